namespace IsoTest.Waits;

/// <summary>Ready when a path exists inside the container.</summary>
internal sealed class FileWaitStrategy(string path) : PollingWaitStrategy
{
    public string Path { get; } = path;

    public override string ToString() => $"file {Path} existing";

    private protected override async Task<bool> ProbeAsync(WaitAttempt attempt, CancellationToken cancellationToken)
    {
        bool exists;
        if (attempt.Container is IContainerProbes probes)
        {
            exists = await probes.FileExistsAsync(Path, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var result = await attempt.Container.ExecAsync(["test", "-e", Path], cancellationToken).ConfigureAwait(false);
            exists = result.ExitCode == 0;
        }

        if (!exists)
        {
            attempt.LastResult = $"{Path} does not exist";
        }

        return exists;
    }
}
