"""Ansible plugins loaded by ansible-playbook itself for the provisioning adapter (never imported)."""
