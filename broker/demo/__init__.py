"""The whole exchange in one directory: provisioning a federation and running its daemons."""
