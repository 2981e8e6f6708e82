"""One module per faceedit-train command."""
