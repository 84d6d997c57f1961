using PublicApiGenerator;
using Snapshooter.Xunit;
using Xunit;

namespace IsoTest.Tests;

public class PublicApiTests
{
    /// <summary>
    /// Every change to the public surface shows up in review as a diff of the snapshot
    /// (__snapshots__/PublicApiTests.PublicApi_HasNotChanged.snap). When a change is intended,
    /// delete the file and run the test again to record the new surface.
    /// </summary>
    [Fact]
    public void PublicApi_HasNotChanged()
    {
        // The core package and the Docker backend's package (the engine's surface is EngineBackend and its provider).
        var api = string.Join("\n", new[] { typeof(ContainerBuilder).Assembly, typeof(IsoTest.Docker.DockerBackend).Assembly }.Select(a => a.GeneratePublicApi(new ApiGeneratorOptions
        {
            // Which assemblies see internals is not part of the public surface.
            ExcludeAttributes = ["System.Runtime.CompilerServices.InternalsVisibleToAttribute"],
            // AddIsoTest lives in Microsoft.Extensions.DependencyInjection, which is denied by default.
            DenyNamespacePrefixes = [],
        })));

        Snapshot.Match(api);
    }
}
