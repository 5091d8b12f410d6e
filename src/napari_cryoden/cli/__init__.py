"""The `cryoden` command line: each command parses its flags and delegates."""
