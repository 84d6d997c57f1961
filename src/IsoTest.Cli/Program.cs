using System.Runtime.InteropServices;
using IsoTest.Cli.CommandLine;
using IsoTest.Cli.Commands;

namespace IsoTest.Cli;

/// <summary>The <c>isotest</c> command.</summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        // Like docker run's signal proxy: the first SIGINT/SIGTERM stops the container (SIGTERM, then
        // SIGKILL after the stop timeout) and we exit with its code; a second one kills it at once.
        // Cancel = true keeps the runtime from exiting before the container is removed.
        using var stop = new CancellationTokenSource();
        using var kill = new CancellationTokenSource();
        var signals = 0;
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            (Interlocked.Increment(ref signals) == 1 ? stop : kill).Cancel();
        }

        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        var stdout = Console.Out;
        var stderr = Console.Error;
        bool IsTerminal(TextWriter writer) =>
            (ReferenceEquals(writer, stdout) && !Console.IsOutputRedirected) || (ReferenceEquals(writer, stderr) && !Console.IsErrorRedirected);
        return await RunAsync(args, stdout, stderr, Backends.CreateEngine, stop.Token, kill.Token, IsTerminal).ConfigureAwait(false);
    }

    /// <summary>
    /// The whole command, in process: tests call it with their own writers to capture what the
    /// user would see (<paramref name="isTerminal"/> says which of them to treat as a terminal; none by default).
    /// Returns the process exit code.
    /// </summary>
    public static Task<int> RunAsync(
        IReadOnlyList<string> args,
        TextWriter stdout,
        TextWriter stderr,
        Func<IContainerBackend>? backendFactory = null,
        CancellationToken stopRequested = default,
        CancellationToken killRequested = default,
        Func<TextWriter, bool>? isTerminal = null) =>
        IsoTestCommandLine.InvokeAsync(
            args,
            new CliContext(stdout, stderr, backendFactory ?? Backends.CreateEngine, Environment.GetEnvironmentVariable, stopRequested, killRequested, isTerminal ?? (_ => false)));
}
