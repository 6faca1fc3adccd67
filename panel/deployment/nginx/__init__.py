"""nginx: render config from Sites (pure) and apply it safely (stage, test, swap, reload)."""
