"""The ``twinnet`` command line."""
