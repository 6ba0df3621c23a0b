"""The backprop page's routes (placeholder: filled by the backprop page's author)."""

routes = []
