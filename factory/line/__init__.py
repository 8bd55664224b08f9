"""The bench line: slots, identification, pipeline rules, jobs, the controller and its agent.

Events from udev/SNMP (or the simulated line, through the same entry point) become slot
occupancy; occupancy becomes a job chosen by rules; jobs are claimed by the agent driving the
bench and run step by step, with every device state change going through the lifecycle.
"""
