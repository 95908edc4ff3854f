"""What the platform lends every application and the console alike: charts in the
console's one chart library (``charts``), values as people read them (``readable``) and
the options, errors and receipts of the applications' write commands
(``client_commands``). It sits below the applications and above ``contracts`` and
``ledger`` (ARCHITECTURE.md section 2), so no application reaches into another's
package for them."""
