"""Services of the HuleEdu platform."""
