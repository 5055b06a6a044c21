"""HTTP routes of the service, one blueprint per resource."""
