"""Shipped Modbus device profiles (TOML); a package so that wheels carry the files."""
