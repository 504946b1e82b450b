"""Writes a node's config.toml back after a benchmark changed some settings.

The config has top-level settings and one level of tables (`[relay]`);
JSON's spelling of strings, numbers, booleans and lists is also TOML's.
"""

import json


def dumps(config: dict) -> str:
    top = [f"{k} = {json.dumps(v)}\n" for k, v in config.items() if not isinstance(v, dict)]
    tables = [
        f"\n[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in table.items())
        for name, table in config.items()
        if isinstance(table, dict)
    ]
    return "".join(top + tables)
