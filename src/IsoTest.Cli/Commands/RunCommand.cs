using System.Globalization;

namespace IsoTest.Cli.Commands;

/// <summary>
/// Runs one container the way <c>docker run</c> does in the foreground: create, start, stream its
/// output, wait, exit with its exit code; always remove it.
/// </summary>
internal static class RunCommand
{
    /// <summary>Exit code of a process killed by SIGKILL (128 + 9), which is what the OOM killer sends.</summary>
    public const int OomExitCode = 137;

    /// <summary>Docker's code when the command cannot be found.</summary>
    public const int NotFoundExitCode = 127;

    /// <summary>Docker's code when the command cannot be invoked.</summary>
    public const int CannotInvokeExitCode = 126;

    /// <summary>Docker's code when the error is isotest's own (bad flags, could not create the container).</summary>
    public const int OwnErrorExitCode = 125;

    /// <summary>Runs the container of <paramref name="request"/> and returns the exit code for this process.</summary>
    /// <param name="request">The parsed command line.</param>
    /// <param name="backendFactory">Creates the backend that runs it.</param>
    /// <param name="stdout">Receives the container's stdout.</param>
    /// <param name="stderr">Receives the container's stderr and isotest's own messages.</param>
    /// <param name="stopRequested">Cancelled on the first SIGINT/SIGTERM: stop the container (SIGTERM, then SIGKILL after its stop timeout).</param>
    /// <param name="killRequested">Cancelled on the second: kill it now.</param>
    /// <param name="pullDisplay">Shows the progress of pulling an image root (on stderr, as docker run does); none when null.</param>
    public static async Task<int> ExecuteAsync(
        RunRequest request,
        Func<IContainerBackend> backendFactory,
        TextWriter stdout,
        TextWriter stderr,
        CancellationToken stopRequested = default,
        CancellationToken killRequested = default,
        Func<PullProgressDisplay>? pullDisplay = null)
    {
        try
        {
            var backend = backendFactory();
            await using (backend.ConfigureAwait(false))
            {
                var networks = await DeclareNetworksAsync(backend, request.Spec, stopRequested).ConfigureAwait(false);
                var declared = new DisposeAll(networks);
                await using var _ = declared.ConfigureAwait(false);
                var spec = request.Spec with { Networks = networks.Count > 0 ? networks.Select(Network.Join).ToList() : request.Spec.Networks };
                IContainer container;
                var display = spec.RootFileSystem.Kind == RootFileSystemKind.Image && spec.PullProgress is null ? pullDisplay?.Invoke() : null;
                try
                {
                    // The image is resolved (and pulled, per --pull) while the container is created.
                    container = await backend.CreateAsync(display is null ? spec : spec with { PullProgress = display }, stopRequested).ConfigureAwait(false);
                }
                finally
                {
                    if (display is not null)
                    {
                        await display.DisposeAsync().ConfigureAwait(false);
                    }
                }

                // No daemon yet: the container never outlives this command, so it is removed whether or
                // not --rm was given (disposing removes it).
                await using (container.ConfigureAwait(false))
                {
                    return await RunAsync(container, stdout, stderr, stopRequested, killRequested).ConfigureAwait(false);
                }
            }
        }
        catch (ExecFailedException e)
        {
            await stderr.WriteLineAsync($"isotest: {e.Message}").ConfigureAwait(false);
            return e.Reason == ExecFailure.NotFound ? NotFoundExitCode : CannotInvokeExitCode;
        }
        catch (IsoTestException e)
        {
            await stderr.WriteLineAsync($"isotest: {e.Message}").ConfigureAwait(false);
            return OwnErrorExitCode;
        }
        catch (PlatformNotSupportedException e)
        {
            await stderr.WriteLineAsync($"isotest: {e.Message}").ConfigureAwait(false);
            return OwnErrorExitCode;
        }
        catch (OperationCanceledException) when (stopRequested.IsCancellationRequested)
        {
            await stderr.WriteLineAsync("isotest: interrupted before the container started; nothing was left behind").ConfigureAwait(false);
            return 130; // 128 + SIGINT, what a shell reports for an interrupted command
        }
    }

    private static async Task<int> RunAsync(IContainer container, TextWriter stdout, TextWriter stderr, CancellationToken stopRequested, CancellationToken killRequested)
    {
        // Registered before start so a signal that arrives while starting still stops the container.
        using var onStop = stopRequested.Register(() => StopInBackground(container, null, stderr));
        using var onKill = killRequested.Register(() => StopInBackground(container, TimeSpan.Zero, stderr));

        // Start the log pump first: FollowLogsAsync replays from the container's start, so nothing is lost,
        // and output appears as it is written rather than when the command ends.
        await container.StartAsync(CancellationToken.None).ConfigureAwait(false);
        foreach (var port in container.Spec.Ports)
        {
            // As `docker port` would say it: where a client reaches each published port (random ones are known only now).
            var endpoint = container.GetEndpoint(port);
            await stderr.WriteLineAsync($"isotest: {port}/tcp -> {endpoint.Host}:{endpoint.Port}").ConfigureAwait(false);
        }

        var pump = CopyLogsAsync(container, stdout, stderr);
        var exitCode = await container.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
        await pump.ConfigureAwait(false);
        await stdout.FlushAsync(CancellationToken.None).ConfigureAwait(false);

        if (container.OomKilled)
        {
            var limit = container.Spec.Limits.MemoryBytes is { } bytes ? FormatSize(bytes) : "none";
            await stderr.WriteLineAsync($"isotest: container {container.Name} was killed by the OOM killer (memory limit {limit})").ConfigureAwait(false);
            await stderr.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            return OomExitCode;
        }

        await stderr.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        return exitCode;
    }

    private static async Task CopyLogsAsync(IContainer container, TextWriter stdout, TextWriter stderr)
    {
        await foreach (var line in container.FollowLogsAsync(CancellationToken.None).ConfigureAwait(false))
        {
            var writer = line.Stream == LogStream.Stdout ? stdout : stderr;
            await writer.WriteLineAsync(line.Text).ConfigureAwait(false);
        }
    }

    private static void StopInBackground(IContainer container, TimeSpan? timeout, TextWriter stderr) =>
        _ = Task.Run(async () =>
        {
            try
            {
                await container.StopAsync(timeout, CancellationToken.None).ConfigureAwait(false);
            }
            catch (IsoTestException e)
            {
                // The main path still waits for the exit and disposes, which kills what is left.
                await stderr.WriteLineAsync($"isotest: stopping container {container.Name}: {e.Message}").ConfigureAwait(false);
            }
        });

    /// <summary>A size as Docker's flags write it, exact: <c>16MiB</c>, <c>1GiB</c>, <c>6291457B</c>.</summary>
    internal static string FormatSize(long bytes)
    {
        foreach (var (unit, shift) in new[] { ("GiB", 30), ("MiB", 20), ("KiB", 10) })
        {
            if (bytes >= 1L << shift && bytes % (1L << shift) == 0)
            {
                return (bytes >> shift).ToString(CultureInfo.InvariantCulture) + unit;
            }
        }

        return bytes.ToString(CultureInfo.InvariantCulture) + "B";
    }

    /// <summary>
    /// The networks <c>--network NAME</c> names, declared in this invocation: the backend's engine lives only as
    /// long as the command, so each is created here (removed at the end); on Docker one that exists is joined.
    /// </summary>
    private static async Task<List<INetwork>> DeclareNetworksAsync(IContainerBackend backend, ContainerSpec spec, CancellationToken cancellationToken)
    {
        var made = new List<INetwork>();
        if (spec.Networks.Count == 0 || backend is not INetworkBackend)
        {
            return made;
        }

        foreach (var network in spec.Networks)
        {
            try
            {
                made.Add(await new NetworkBuilder().WithName(network.Name!).WithBackend(backend).BuildAsync(cancellationToken).ConfigureAwait(false));
            }
            catch (NetworkException) when (backend.Name == "docker")
            {
                return []; // it exists on the daemon: join every network by name, as docker run does
            }
        }

        return made;
    }

    private sealed class DisposeAll(List<INetwork> networks) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            foreach (var network in networks)
            {
                await network.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
