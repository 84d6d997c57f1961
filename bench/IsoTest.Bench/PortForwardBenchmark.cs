namespace IsoTest.Bench;

internal static class PortForwardBenchmark
{
    public static Task<Section> RunAsync(Options options, CancellationToken cancellationToken) =>
        Task.FromResult(new Section("portfwd", "## portfwd\n\nnot yet written\n"));
}
