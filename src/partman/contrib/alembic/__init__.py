"""Alembic operations that leave a partitioned table managed by partman when a migration commits.

Import it once in `env.py` (`import partman.contrib.alembic`) and migrations get:

* `op.manage_table(name, schema=..., by=..., tenant=..., interval=..., premake=...,
  retention=...)`: register an existing partitioned parent (its policy and tenants) in the
  migration's own transaction; reverse: `op.unmanage_table(name, schema=...)`, which never
  drops data;
* `op.create_partitioned_table(name, *columns, schema=..., by=..., ...)`: `op.create_table`
  with `PARTITION BY RANGE (...)`, then `op.manage_table`;
* `op.convert_table(name, schema=..., by=..., interval=..., ...)`: `partman convert` of a live
  ordinary table, inside `with op.get_context().autocommit_block():` (its steps commit on
  connections of their own); reverse: `op.rollback_convert_table(name, schema=...)`;
* autogenerate: tables declared with `partman.contrib.sqlalchemy.partitioned()` get an
  `op.manage_table(...)` when they are not registered (or their policy changed), and the
  partitions partman makes are never proposed for `op.drop_table`.

Partitions themselves are made by the next maintenance pass (`partman apply`, `partman run`,
`Manager.maintain()`), on partman's lock budget rather than inside a migration.
"""

from . import autogenerate as autogenerate
from .ops import (
    ConvertTableOp,
    CreatePartitionedTableOp,
    ManageTableOp,
    RollbackConvertTableOp,
    UnmanageTableOp,
)

__all__ = [
    "ConvertTableOp",
    "CreatePartitionedTableOp",
    "ManageTableOp",
    "RollbackConvertTableOp",
    "UnmanageTableOp",
]
