"""The pure schema model: columns, tables, and the diff that classifies changes. No I/O."""
