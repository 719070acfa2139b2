"""Pure-functional Flax Linen models; parameters carry logical axis names."""
