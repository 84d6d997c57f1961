using System.Reflection;
using System.Runtime.InteropServices;

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
        return await RunAsync(args, Console.Out, Console.Error, Backends.CreateEngine, stop.Token, kill.Token).ConfigureAwait(false);
    }

    /// <summary>
    /// The whole command, in process: tests call it with their own writers to capture what the
    /// user would see. Returns the process exit code.
    /// </summary>
    public static async Task<int> RunAsync(
        IReadOnlyList<string> args,
        TextWriter stdout,
        TextWriter stderr,
        Func<IContainerBackend>? backendFactory = null,
        CancellationToken stopRequested = default,
        CancellationToken killRequested = default)
    {
        if (args.Count == 0 || args[0] is "--help" or "-h" or "help")
        {
            await stdout.WriteAsync(HelpText.Main).ConfigureAwait(false);
            return 0;
        }

        switch (args[0])
        {
            case "version" or "--version" or "-v":
                await stdout.WriteLineAsync(VersionLine()).ConfigureAwait(false);
                return 0;
            case "run":
                RunRequest? request;
                try
                {
                    request = RunParser.Parse(args.Skip(1).ToArray());
                }
                catch (UsageException e)
                {
                    await stderr.WriteLineAsync(e.Report).ConfigureAwait(false);
                    return RunCommand.OwnErrorExitCode;
                }

                if (request is null)
                {
                    await stdout.WriteAsync(HelpText.Run).ConfigureAwait(false);
                    return 0;
                }

                return await RunCommand.ExecuteAsync(request, backendFactory ?? Backends.CreateEngine, stdout, stderr, stopRequested, killRequested).ConfigureAwait(false);
            default:
                var what = args[0].StartsWith('-') ? $"unknown flag: {args[0]}" : $"'{args[0]}' is not an isotest command";
                await stderr.WriteLineAsync($"isotest: {what}\nSee 'isotest --help'.").ConfigureAwait(false);
                return RunCommand.OwnErrorExitCode;
        }
    }

    private static string VersionLine()
    {
        var version = typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        return $"isotest version {version} ({RuntimeInformation.FrameworkDescription}, {RuntimeInformation.OSDescription}, {RuntimeInformation.OSArchitecture})";
    }
}
