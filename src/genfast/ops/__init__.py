"""torch.library custom ops over the native core, each with a fake implementation and a pure-PyTorch
reference implementation (used by the tests and as the fallback when the native core is missing)."""
