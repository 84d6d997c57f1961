namespace IsoTest.Cli.CommandLine;

/// <summary>What every subcommand runs against: the process's streams, environment, backend and signals.</summary>
/// <param name="Stdout">Where results go (and containers' stdout).</param>
/// <param name="Stderr">Where isotest's own messages go (and containers' stderr).</param>
/// <param name="BackendFactory">Creates the backend that runs containers.</param>
/// <param name="GetEnvironmentVariable">Reads the caller's environment.</param>
/// <param name="StopRequested">Cancelled on the first SIGINT/SIGTERM.</param>
/// <param name="KillRequested">Cancelled on the second.</param>
/// <param name="IsTerminal">Whether a writer (<paramref name="Stdout"/> or <paramref name="Stderr"/>) is a terminal: progress bars, or plain lines.</param>
internal sealed record CliContext(
    TextWriter Stdout,
    TextWriter Stderr,
    Func<IContainerBackend> BackendFactory,
    Func<string, string?> GetEnvironmentVariable,
    CancellationToken StopRequested,
    CancellationToken KillRequested,
    Func<TextWriter, bool> IsTerminal);
