"""Provisioning of imaged devices over SSH with Ansible (``playbooks/provision.yml``).

Callers use :mod:`factory.provisioning.service`: describe devices with ``ProvisionTarget``, the
site with ``SiteSettings``, secrets with ``ProvisionSecrets``; implement ``JobSink``; call
``run_provision`` (or ``prepare`` once, then ``run`` / ``run_async``). The line's provision step
is ``AnsibleProvisioner``, built from the site's settings by ``load_provisioner``.
"""
