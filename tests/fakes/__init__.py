"""Fakes of the cloud services that cannot run here, at the wire (wire/), and the worlds tests run on."""
