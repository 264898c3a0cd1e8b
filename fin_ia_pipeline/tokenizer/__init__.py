"""Strate I: ``tokenizer_model`` and ``token_sequences`` (group ``tokenizer``)."""
