"""Named model sizes -> transformer dimensions."""

SIZES = {
    'tiny': dict(num_layers=2, d_model=128, num_heads=4, mlp_dim=512),
    'small': dict(num_layers=6, d_model=384, num_heads=6, mlp_dim=1536),
    'base': dict(num_layers=12, d_model=768, num_heads=12, mlp_dim=3072),
    'large': dict(num_layers=24, d_model=1024, num_heads=16, mlp_dim=4096),
}


def set_size(model_config, size: str):
    """Writes the dims of the named size into a model config section (in place)."""
    if size not in SIZES:
        raise ValueError(f'unknown model size {size!r}; choose one of {sorted(SIZES)}')
    model_config.update(SIZES[size])
    return model_config
