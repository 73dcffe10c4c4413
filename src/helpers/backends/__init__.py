"""How a model runs: exports, quantization, precision variants, the engine registry, ONNX Runtime
sessions, engine workers, and seq2seq generation engines. Backends know nothing of notebooks."""
