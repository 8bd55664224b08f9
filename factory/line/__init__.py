"""The bench line: slots, identification, pipeline rules, jobs, the controller and its agent.

Events from udev/SNMP (or the simulated line, through the same entry point) become slot
occupancy; occupancy becomes a job chosen by rules; jobs are claimed by the agent driving the
bench and run step by step, with every device state change going through the lifecycle.

Other areas, the API and the CLI use ``service`` (a technician's cancel/abort/retry, running an
agent, writing a job's log), ``views`` (the board, jobs, benches), ``models`` and ``errors``.
Inside: ``controller`` (events, heartbeat) with ``dispatcher`` (claims, runner threads),
``leases`` (claiming, lease renewal), ``jobs`` (creating and finishing jobs), ``job_log``
(batched log lines), ``job_runner`` with ``job_steps`` and ``erase_step``, ``reconcile``
(start-up), ``slots``/``network_slots`` (occupancy), ``pipeline_rules``, ``erase_workers``.
"""
