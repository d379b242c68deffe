"""Typed schemas of every config group, and the rules between them; nothing here imports torch.

One source per default: **the dataclass holds every default**; a YAML option under
``conf/<group>/`` starts from its schema (``defaults: [/schema/<group>/<option>@_here_]``,
registered by :mod:`compress.config.store`) and carries only the values that make it differ
(``tests/compress/config/test_config.py`` fails when a YAML restates a default). Choice fields
are ``StrEnum``s, so a misspelt choice, an unknown key or a value of the wrong type fails at
composition, before torch is imported. Ranges that a type cannot express are checked in
``__post_init__``, and the rules between groups in :mod:`compress.config.rules`, both when the
composed config is turned into these objects, before any model is loaded.

One module per config group: ``model``, ``task`` (with its data), ``prune`` (with the
schedule), ``quant``, ``training`` (the baseline's fine-tuning and recovery), ``backend``
(with its capability table), ``bench``, and ``job`` (the whole job).
"""
