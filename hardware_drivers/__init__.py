"""hardware_drivers package."""
