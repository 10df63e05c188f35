// ChildProcess lives in the Chaos module, which `sgctl chaos` shares; tests keep getting it from here.
@_exported import class Chaos.ChildProcess
