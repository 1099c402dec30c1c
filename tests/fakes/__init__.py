"""In-memory fakes of the cloud services that cannot run here, at the SDK's operation level."""
