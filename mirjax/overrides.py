"""Named override sets: the variants of a comparison, applied to one config (DESIGN.md 7).

An override set is a partial config tree, e.g. ``{"model": {"frontend": {"hop": 512}}}``
(ConfigDict keys cannot hold dots, so a dotted path is nested; `nest` writes one from
dotted keys). A comparison keeps them under ``config.compare.overrides.<name>``, so a
value is changed from the command line with the usual syntax:

  --config.compare.overrides.raw_1024_512.model.frontend.n_filters=64

`apply` sets each leaf in the config, refusing a path the config does not have. A section
that names another registry entry (its ``name`` differs from the config's) and has fields
the config's section lacks (e.g. a "logmel" front-end where the config has "rawconv")
replaces that section whole, so give it complete (``frontends.default_config("logmel")``
with its fields set). A section that only changes ``name`` among fields the section has
(e.g. ``optim.combine.name``: every combiner has the same fields) is set leaf by leaf, so
the config's other fields there stay.
"""
import copy

import ml_collections

from mirjax.errors import ConfigError


def nest(flat: dict) -> ml_collections.ConfigDict:
  """``{"model.frontend.hop": 512}`` -> the override tree ``{"model": {"frontend": {"hop": 512}}}``."""
  tree = {}
  for path, value in flat.items():
    *parents, leaf = path.split(".")
    node = tree
    for key in parents:
      node = node.setdefault(key, {})
    node[leaf] = value
  return ml_collections.ConfigDict(tree)


def _is_section(x):
  return isinstance(x, (ml_collections.ConfigDict, dict))


def apply(config: ml_collections.ConfigDict, overrides, name: str = "", _prefix: str = ""):
  """Set every leaf of the override tree `overrides` in `config`, in place; returns `config`.

  Raises ValueError naming the override set `name`, the dotted path and the valid fields
  when a path is not in the config, when a value meets a section (or a section a value), or
  when a value's type does not fit its field.
  """
  where = f"override set {name!r}: " if name else ""
  for key, value in overrides.items():
    path = _prefix + key
    if key not in config:
      parent = f"config.{_prefix[:-1]}" if _prefix else "the config"
      raise ConfigError(f"{where}the config has no field {path!r}; {parent} has {sorted(config)}")
    target = config[key]
    if _is_section(value) != isinstance(target, ml_collections.ConfigDict):
      what = "a section" if isinstance(target, ml_collections.ConfigDict) else "a value"
      raise ConfigError(f"{where}config.{path} is {what}; the override gives "
                       f"{'a section' if _is_section(value) else repr(value)}")
    if _is_section(value):
      other_kind = "name" in value and value["name"] != target.get("name")
      if other_kind and any(k not in target for k in value):
        replacement = ml_collections.ConfigDict(copy.deepcopy(value))  # another kind: whole
        replacement.lock()
        config[key] = replacement
      else:
        apply(target, value, name, path + ".")
      continue
    try:
      config[key] = value
    except TypeError as e:
      raise ConfigError(f"{where}config.{path}: {e}") from e
  return config
