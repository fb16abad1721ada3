"""The partner API: resellers read the status of their own customers' contracts."""
