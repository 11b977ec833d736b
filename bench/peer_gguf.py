#!/usr/bin/env python3
"""A random model directory (bench/common.py save_model) as a BF16 GGUF file written by
llama.cpp's own converter, so that llama.cpp and llmc run the very same file
(bench/peer_llamacpp.sh). The fixture tokenizer that save_model copies is not among the
converter's known pre-tokenizers, so it is named "qwen2": the benchmarks feed token ids, and no
text is tokenized by llama.cpp.

  python3 bench/peer_gguf.py LLAMA_CPP_SRC MODEL_DIR OUT.gguf
"""
import sys

llama, model, out = sys.argv[1:4]
sys.path[:0] = [llama, f"{llama}/gguf-py"]
from conversion import base  # noqa: E402

base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "qwen2"
import convert_hf_to_gguf  # noqa: E402

sys.argv = ["convert_hf_to_gguf.py", model, "--outfile", out, "--outtype", "bf16"]
convert_hf_to_gguf.main()
