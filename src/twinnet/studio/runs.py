"""The runs page's routes (placeholder: filled by the runs page's author)."""

routes = []
