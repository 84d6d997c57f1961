namespace IsoTest.Bench;

internal static class ScaleBenchmark
{
    public static Task<Section> RunAsync(Options options, CancellationToken cancellationToken) =>
        Task.FromResult(new Section("scale", "## scale\n\nnot yet written\n"));
}
