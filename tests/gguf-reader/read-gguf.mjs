// Prints the view of the independent GGUF reader (@huggingface/gguf) of each file given on the
// command line, as one JSON document: {path: {ok, version, tensor_count, kv_count,
// tensor_data_offset, metadata_keys, metadata, tensors: [{name, type, ne, offset, file_offset}]}}.
// `offset` is the reader's offset, relative to the start of the data section;
// `file_offset` = tensor_data_offset + offset, from the start of the file.
// Used by tests/cli/test_gguf_interop.py; install with `npm ci --prefix tests/gguf-reader`.
import { gguf, GGMLQuantizationType } from "@huggingface/gguf";

const big = (v) => (typeof v === "bigint" ? v.toString() : String(v));

// Metadata values as JSON: bigint -> decimal string, NaN/Infinity -> "NaN"/"Infinity"/
// "-Infinity", arrays longer than 1024 -> {"count": n} (modelgate summarises those).
const norm = (v) => {
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number" && !Number.isFinite(v)) return Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
  if (Array.isArray(v)) return v.length > 1024 ? { count: v.length } : v.map(norm);
  return v;
};

const out = {};
for (const path of process.argv.slice(2)) {
  try {
    const { metadata, tensorInfos, tensorDataOffset } = await gguf(path, { allowLocalFile: true });
    const keys = Object.keys(metadata).filter((k) => !["version", "tensor_count", "kv_count"].includes(k));
    out[path] = {
      ok: true,
      version: Number(metadata.version),
      tensor_count: big(metadata.tensor_count),
      kv_count: big(metadata.kv_count),
      tensor_data_offset: big(tensorDataOffset),
      metadata_keys: keys,
      metadata: Object.fromEntries(keys.map((k) => [k, norm(metadata[k])])),
      tensors: tensorInfos.map((t) => ({
        name: t.name,
        type: GGMLQuantizationType[t.dtype] ?? "unknown:" + t.dtype,
        type_id: t.dtype,
        ne: t.shape.map(big),
        offset: big(t.offset),
        file_offset: (BigInt(tensorDataOffset) + BigInt(t.offset)).toString(),
      })),
    };
  } catch (e) {
    out[path] = { ok: false, error: String(e && e.message ? e.message : e) };
  }
}
process.stdout.write(JSON.stringify(out, null, 1) + "\n");
