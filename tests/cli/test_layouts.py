#!/usr/bin/python3
"""No false refusals: folders laid out as published model repositories load.

File names and JSON shapes follow real Hugging Face repositories (named in each test); the
weights are tiny tensors written here. Also: detection where probes overlap (a safetensors
header of 640 bytes starts like a pickle) and empty files claimed by a JSON format.
"""
import json
import os
import shutil
import struct
import zipfile

import mgtest
from mgtest import FORMAT, OK

REAL_ST = os.path.join(mgtest.CORPUS, "safetensors")


def safetensors_bytes(tensors, pad_to=None, metadata=None):
    """tensors: list of (name, dtype, shape, bytes); header padded with spaces to pad_to."""
    hdr, off, blob = {}, 0, b""
    if metadata is not None:
        hdr["__metadata__"] = metadata
    for name, dt, shape, data in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blob += data
    h = json.dumps(hdr, separators=(",", ":")).encode()
    if pad_to is not None:
        assert len(h) <= pad_to
        h += b" " * (pad_to - len(h))
    else:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def f32(n):
    return ("F32", [n], b"\0\0\x80\x3f" * n)


class Layouts(mgtest.TestCase):
    def write_json(self, rel, doc):
        return self.ws.write(rel, json.dumps(doc, indent=2).encode())

    def write_st(self, rel, names, metadata={"format": "pt"}):
        tensors = [(n,) + f32(k + 1) for k, n in enumerate(names)]
        self.ws.write(rel, safetensors_bytes(tensors, metadata=metadata))
        return sum(4 * (k + 1) for k in range(len(names)))

    def write_sharded(self, folder, prefix, shards, extra_meta=None):
        """shards: list of tensor-name lists; writes PREFIX-0000K-of-0000N.safetensors and
        PREFIX.safetensors.index.json as transformers' save_pretrained does."""
        n, weight_map, total = len(shards), {}, 0
        for k, names in enumerate(shards, 1):
            fn = "%s-%05d-of-%05d.safetensors" % (prefix, k, n)
            total += self.write_st(os.path.join(folder, fn), names)
            for t in names:
                weight_map[t] = fn
        meta = {"total_size": total}
        meta.update(extra_meta or {})
        self.write_json(os.path.join(folder, prefix + ".safetensors.index.json"),
                        {"metadata": meta, "weight_map": dict(sorted(weight_map.items()))})
        return weight_map

    def tokenizer_files(self, folder, vocab_extra=()):
        vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "\u2581the": 3}
        for w in vocab_extra:
            vocab[w] = len(vocab)
        self.write_json(os.path.join(folder, "tokenizer.json"), {
            "version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [{"id": 0, "content": "<unk>", "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": False, "special": True}],
            "normalizer": None,
            "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",
                              "prepend_scheme": "first", "split": False},
            "post_processor": None, "decoder": {"type": "Metaspace", "replacement": "\u2581"},
            "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                      "continuing_subword_prefix": None, "end_of_word_suffix": None,
                      "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                      "vocab": vocab, "merges": []}})
        self.write_json(os.path.join(folder, "tokenizer_config.json"), {
            "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>",
            "eos_token": "</s>", "unk_token": "<unk>", "model_max_length": 1000000000000000019884624838656,
            "tokenizer_class": "LlamaTokenizer", "legacy": False})
        self.write_json(os.path.join(folder, "special_tokens_map.json"),
                        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"})
        # sentencepiece model: a protobuf (field 1, length-delimited), not JSON.
        self.ws.write(os.path.join(folder, "tokenizer.model"),
                      b"\x0a\x0b\x0a\x05<unk>\x15\x00\x00\x00\x00\x18\x02" * 4)

    def load(self, name, folder):
        self.ws.models = []
        self.ws.pin_dir(name, self.ws.path(folder))
        self.ws.write_policy()
        r, doc = self.ws.inspect_json(name)
        self.assertExit(r, OK, folder)
        self.assertEqual(self.ws.run("inspect", name).returncode, OK)
        return {f["path"]: f["format"] for f in doc["files"]}, \
            {(t["name"], t["file"]) for t in doc["tensors"]}

    def test_mistral_consolidated_beside_shards(self):
        # mistralai/Mistral-7B-Instruct-v0.3: consolidated.safetensors (mistral-inference
        # names) beside the transformers shards, their index, params.json, tokenizer files.
        d = "Mistral-7B-Instruct-v0.3"
        self.write_st(d + "/consolidated.safetensors",
                      ["layers.0.attention.wk.weight", "layers.0.attention.wq.weight", "norm.weight",
                       "output.weight", "tok_embeddings.weight"], metadata=None)
        wm = self.write_sharded(d, "model", [
            ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"],
            ["model.layers.0.self_attn.k_proj.weight"],
            ["lm_head.weight", "model.norm.weight"]])
        self.write_json(d + "/params.json", {
            "dim": 4096, "n_layers": 32, "head_dim": 128, "hidden_dim": 14336, "n_heads": 32,
            "n_kv_heads": 8, "norm_eps": 1e-05, "vocab_size": 32768, "rope_theta": 1000000.0})
        self.write_json(d + "/config.json", {
            "architectures": ["MistralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1,
            "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "model_type": "mistral",
            "num_hidden_layers": 32, "torch_dtype": "bfloat16", "transformers_version": "4.42.0.dev0",
            "vocab_size": 32768})
        self.write_json(d + "/generation_config.json",
                        {"_from_model_config": True, "bos_token_id": 1, "eos_token_id": 2})
        self.tokenizer_files(d)
        shutil.copy(self.ws.path(d, "tokenizer.model"), self.ws.path(d, "tokenizer.model.v3"))
        self.ws.write(d + "/README.md", b"---\nlicense: apache-2.0\n---\n# Mistral\n")
        self.ws.write(d + "/.gitattributes", b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
        formats, tensors = self.load("mistral", d)
        self.assertEqual(formats["consolidated.safetensors"], "safetensors")
        self.assertEqual(formats["model.safetensors.index.json"], "safetensors-index")
        for p in ("params.json", "config.json", "tokenizer.json", "tokenizer.model",
                  "tokenizer.model.v3", "generation_config.json"):
            self.assertEqual(formats[p], "asset", p)
        self.assertIn(("output.weight", "consolidated.safetensors"), tensors)
        self.assertEqual({t for t in tensors if t[1] != "consolidated.safetensors"}, set(wm.items()))
        # Other safetensors files are not part of the set, but the set itself is still exact.
        index = d + "/model.safetensors.index.json"
        s1, s3 = "model-00001-of-00003.safetensors", "model-00003-of-00003.safetensors"
        for bad in ({**wm, "output.weight": s1},  # not in that shard (it is in consolidated)
                    {k: v for k, v in wm.items() if v != s3},  # a shard the index omits
                    {**wm, "lm_head.weight": s1},  # a tensor in the wrong shard
                    {**wm, "z": "model-00004-of-00003.safetensors"}):  # a shard not there
            with self.subTest(bad=bad):
                self.write_json(index, {"metadata": {"total_size": 40}, "weight_map": bad})
                self.ws.models = []
                self.ws.pin_dir("bad", self.ws.path(d))
                self.ws.write_policy()
                self.assertExit(self.ws.run("inspect", "bad"), FORMAT)

    def test_pytorch_and_safetensors_indexes(self):
        # meta-llama/Llama-2-7b-hf: model.safetensors.index.json and pytorch_model.bin.index.json
        # side by side (the .bin shards are pickles: a policy lists only the index JSON).
        d = "Llama-2-7b-hf"
        wm = self.write_sharded(d, "model", [
            ["model.embed_tokens.weight", "model.layers.0.mlp.down_proj.weight"],
            ["lm_head.weight", "model.norm.weight"]])
        self.write_json(d + "/pytorch_model.bin.index.json", {
            "metadata": {"total_size": 13476839424},
            "weight_map": {k: v.replace("model-", "pytorch_model-").replace(".safetensors", ".bin")
                           for k, v in wm.items()}})
        self.write_json(d + "/config.json", {
            "_name_or_path": "meta-llama/Llama-2-7b-hf", "architectures": ["LlamaForCausalLM"],
            "model_type": "llama", "num_hidden_layers": 32, "torch_dtype": "float16"})
        self.tokenizer_files(d)
        for n in ("LICENSE.txt", "USE_POLICY.md", "README.md"):
            self.ws.write(d + "/" + n, b"text\n")
        formats, tensors = self.load("llama", d)
        self.assertEqual(formats["pytorch_model.bin.index.json"], "asset")
        self.assertEqual(formats["model.safetensors.index.json"], "safetensors-index")
        self.assertEqual(tensors, set(wm.items()))

    def test_json_assets_with_format_keys(self):
        # A code model's tokenizer whose vocabulary holds "weight_map", "nodes" and "arg_nodes",
        # and a config.json of a graph model with "nodes" and "arg_nodes" keys.
        d = "code-model"
        self.write_st(d + "/model.safetensors", ["wte.weight", "h.0.attn.c_attn.weight"])
        self.tokenizer_files(d, vocab_extra=['"weight_map"', "weight_map", "nodes", "arg_nodes",
                                             "heads", "\u0120weight_map"])
        self.write_json(d + "/config.json", {
            "model_type": "graphormer", "nodes": [{"op": "null", "name": "x", "inputs": []}],
            "arg_nodes": [0], "heads": [[0, 0, 0]], "num_classes": 1})
        with open(self.ws.path(d, "tokenizer.json"), "rb") as f:
            self.assertIn(b'"weight_map"', f.read())
        formats, tensors = self.load("code", d)
        self.assertEqual(formats["tokenizer.json"], "asset")
        self.assertEqual(formats["config.json"], "asset")
        self.assertEqual(len(tensors), 2)

    def test_adapters_folder_beside_shards(self):
        # mlx-lm fine-tune output: the base model's shards and index, and adapters/ with the
        # real adapters.safetensors that MLX wrote (tests/data/real) and its config.
        d = "mlx-finetune"
        wm = self.write_sharded(d, "model", [["model.layers.0.self_attn.q_proj.weight"],
                                             ["model.layers.0.self_attn.v_proj.weight"]])
        os.makedirs(self.ws.path(d, "adapters"))
        shutil.copy(os.path.join(REAL_ST, "mlx-lora-adapters.safetensors"),
                    self.ws.path(d, "adapters", "adapters.safetensors"))
        self.write_json(d + "/adapters/adapter_config.json", {
            "fine_tune_type": "lora", "num_layers": 16,
            "lora_parameters": {"rank": 8, "alpha": 16, "dropout": 0.0, "scale": 10.0}})
        self.write_json(d + "/config.json", {"model_type": "llama"})
        formats, tensors = self.load("mlx", d)
        self.assertEqual(formats["adapters/adapters.safetensors"], "safetensors")
        self.assertEqual(len([t for t in tensors if t[1] == "adapters/adapters.safetensors"]), 16)
        self.assertTrue(set(wm.items()) <= tensors)

    def test_diffusers_pipeline(self):
        # A diffusers pipeline (stabilityai/stable-diffusion-xl-base-1.0 names): model_index.json,
        # a sharded unet with diffusion_pytorch_model.safetensors.index.json, single-file
        # components, and a root-level consolidated file beside them.
        d = "sdxl"
        self.write_json(d + "/model_index.json", {
            "_class_name": "StableDiffusionXLPipeline", "_diffusers_version": "0.19.0.dev0",
            "scheduler": ["diffusers", "EulerDiscreteScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]})
        self.write_json(d + "/scheduler/scheduler_config.json",
                        {"_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 1000})
        self.write_st(d + "/text_encoder/model.safetensors",
                      ["text_model.embeddings.token_embedding.weight"])
        self.write_json(d + "/text_encoder/config.json", {"architectures": ["CLIPTextModel"]})
        self.write_json(d + "/tokenizer/vocab.json", {"!": 0, "weight_map": 1})
        self.ws.write(d + "/tokenizer/merges.txt", b"#version: 0.2\ni n\n")
        wm = self.write_sharded(d + "/unet", "diffusion_pytorch_model",
                                [["conv_in.weight", "conv_in.bias"], ["conv_out.weight"]])
        self.write_json(d + "/unet/config.json", {"_class_name": "UNet2DConditionModel"})
        self.write_st(d + "/vae/diffusion_pytorch_model.safetensors", ["decoder.conv_in.weight"])
        self.write_st(d + "/sd_xl_base_1.0.safetensors", ["conv_in.weight", "model.x"])
        formats, tensors = self.load("sdxl", d)
        self.assertEqual(formats["unet/diffusion_pytorch_model.safetensors.index.json"],
                         "safetensors-index")
        self.assertEqual(formats["tokenizer/vocab.json"], "asset")
        self.assertTrue({(t, "unet/" + f) for t, f in wm.items()} <= tensors)
        self.assertIn(("conv_in.weight", "sd_xl_base_1.0.safetensors"), tensors)


class Detection(mgtest.TestCase):
    def test_safetensors_that_starts_like_a_pickle(self):
        # Header lengths 640, 896, 1152, 1408: the file starts with 0x80 0x02..0x05.
        for n in (640, 896, 1152, 1408):
            with self.subTest(header=n):
                data = safetensors_bytes([("w",) + f32(4)], pad_to=n)
                self.assertEqual(data[:2], bytes([0x80, n >> 8]))
                for name in ("model.safetensors", "weights.bin"):
                    p = self.ws.write("h%d/%s" % (n, name), data)
                    self.ws.models = []
                    self.ws.pin_file("m", p)
                    self.ws.write_policy()
                    r, doc = self.ws.inspect_json("m")
                    self.assertExit(r, OK, name)
                    self.assertEqual(doc["files"][0]["format"], "safetensors")
                    self.assertEqual(doc["tensors"][0]["name"], "w")
                    r = self.ws.run("verify", "--json", "m")
                    self.assertEqual(json.loads(r.stdout)["files"][0]["format"], "safetensors")
        # A PyTorch zip (torch.save) also matches the zip probe of npz: still refused as such.
        p = self.ws.path("pytorch_model.bin")
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
            z.writestr("archive/version", b"3\n")
        self.ws.pin_file("torchzip", p)
        self.ws.pin_file("stream", self.ws.write("x.bin", b"\x80\x04\x95\x04\0\0\0\0\0\0\0}\x94."))
        self.ws.write_policy()
        r = self.ws.run("inspect", "torchzip")
        self.assertExit(r, FORMAT)
        self.assertIn("PyTorch", r.stderr)
        r = self.ws.run("inspect", "stream")
        self.assertExit(r, FORMAT)
        self.assertIn("pickle", r.stderr)

    def test_empty_files_claimed_by_json_formats(self):
        # An empty -symbol.json or index: a format error, no undefined behaviour (memchr(NULL)).
        for name, beside in (("net-symbol.json", "net-0000.params"),
                             ("model.safetensors.index.json", "model-00001-of-00001.safetensors"),
                             ("empty.safetensors", None), ("empty.npz", None), ("empty.gguf", None)):
            with self.subTest(name=name):
                d = self.ws.path("empty-" + name)
                self.ws.write(os.path.join(d, name), b"")
                if beside is not None and beside.endswith(".safetensors"):
                    self.ws.write(os.path.join(d, beside), safetensors_bytes([("w",) + f32(1)]))
                elif beside is not None:
                    shutil.copy(os.path.join(mgtest.CORPUS, "mxnet", "go-test-v0.9",
                                             "go_test-0001.params"), os.path.join(d, beside))
                self.ws.models = []
                self.ws.pin_dir("e", d)
                self.ws.write_policy()
                r = self.ws.run("inspect", "e")
                self.assertExit(r, FORMAT)
                self.assertIn(name, r.stderr)
                self.assertExit(self.ws.run("verify", "e"), OK)


if __name__ == "__main__":
    mgtest.main()
