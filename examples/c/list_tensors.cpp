// A C++ consumer: the header is usable from C++ (extern "C"), linked through CMake's
// imported target modelgate::modelgate. Lists each tensor's name and byte count.
//     list_tensors POLICY MODEL
#include <modelgate.h>
#include <cstdio>
#include <memory>

int main(int argc, char **argv)
{
    if (argc != 3) {
        std::fprintf(stderr, "usage: list_tensors POLICY MODEL\n");
        return 2;
    }
    mg_error err;
    mg_policy *raw_pol = nullptr;
    if (mg_policy_open(argv[1], nullptr, &raw_pol, &err) != MG_OK) {
        std::fprintf(stderr, "refused: %s: %s\n", mg_status_kind(err.status), err.message);
        return err.status;
    }
    std::unique_ptr<mg_policy, void (*)(mg_policy *)> pol(raw_pol, mg_policy_close);
    mg_load_options opts{};
    opts.size = sizeof opts;
    opts.threads = 1;
    mg_model *raw = nullptr;
    if (mg_model_load(pol.get(), argv[2], &opts, &raw, &err) != MG_OK) {
        std::fprintf(stderr, "refused: %s: %s\n", mg_status_kind(err.status), err.message);
        return err.status;
    }
    std::unique_ptr<mg_model, void (*)(mg_model *)> model(raw, mg_model_close);
    for (size_t i = 0; i < mg_model_tensor_count(model.get()); i++) {
        const mg_tensor *t = mg_model_tensor(model.get(), i);
        std::printf("%s %llu\n", t->name, static_cast<unsigned long long>(t->nbytes));
    }
    return 0;
}
