"""Oracle helpers for transformers runs, used by the tests and by scripts/ (imports only what it is given)."""


def randomise(model, torch, seed):
    """Every parameter drawn at random: weights N(0, 0.3^2), LayerNorm weights 1 + N(0, 0.3^2),
    biases and final_logits_bias N(0, 0.3^2), embeddings N(0, 1). Nothing is left at its zero init."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in list(model.named_parameters()) + list(model.named_buffers()):
            if not p.dtype.is_floating_point:
                continue
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float64).to(p.dtype)
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.3 * noise)
            elif "embed" in name or "shared" in name:
                p.copy_(noise)
            else:
                p.copy_(0.3 * noise)
    return model


class Float64Softmax:
    """transformers' encoder computes its softmax in float32 even for a float64 model
    (`softmax(..., dtype=torch.float32)`), which caps it at float32 precision. To make it the float64
    oracle, this context runs that softmax in the input's own dtype when the input is float64."""

    def __init__(self, torch):
        self.torch = torch

    def __enter__(self):
        functional = self.torch.nn.functional
        self.original = original = functional.softmax

        def softmax(x, dim=None, _stacklevel=3, dtype=None):
            if dtype is not None and x.dtype == self.torch.float64:
                dtype = None
            return original(x, dim=dim, dtype=dtype)

        functional.softmax = softmax

    def __exit__(self, *exc):
        self.torch.nn.functional.softmax = self.original


def for_generation(model, torch, eos_bias=6.0):
    """Perturb a randomised LED so that greedy and beam search do not loop on one token and do end with
    eos at varied lengths: weaker decoder attention outputs, a stronger feed-forward path (the next token
    then depends on the current one), final_logits_bias shrunk and eos raised."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "decoder.layers" in name and ("encoder_attn.out_proj" in name or "self_attn.out_proj" in name):
                p.mul_(0.3)
            if "decoder.layers" in name and "fc2" in name:
                p.mul_(2.0)
        model.final_logits_bias.mul_(0.1)
        model.final_logits_bias[0, model.config.eos_token_id] += eos_bias
    return model
