// The configuration and key layout are part of the worker's API: a program that imports the
// worker gets them without naming the module they live in.
@_exported import WorkerSettings
