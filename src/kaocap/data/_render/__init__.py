"""Internals of the synthetic-render data engine (:mod:`kaocap.data.render` is the public API)."""
