"""Placeholder: filled in by this change."""


def includeme(config):
    pass
