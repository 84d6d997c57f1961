using IsoTest.Tests.Fakes;
using Xunit;

namespace IsoTest.Tests.Backends;

public class ContainerBackendsTests
{
    [Theory]
    [InlineData(null, BackendKind.Auto)]
    [InlineData("", BackendKind.Auto)]
    [InlineData("  ", BackendKind.Auto)]
    [InlineData("auto", BackendKind.Auto)]
    [InlineData("engine", BackendKind.Engine)]
    [InlineData(" Engine ", BackendKind.Engine)]
    [InlineData("DOCKER", BackendKind.Docker)]
    public void Parse_KnownValues(string? value, BackendKind expected)
    {
        Assert.Equal(expected, ContainerBackends.Parse(value));
    }

    [Theory]
    [InlineData("podman")]
    [InlineData("engine,docker")]
    [InlineData("1")]
    public void Parse_UnknownValue_SaysWhichValuesExist(string value)
    {
        var e = Assert.Throws<BackendUnavailableException>(() => ContainerBackends.Parse(value));

        Assert.Contains($"ISOTEST_BACKEND='{value}'", e.Message);
        Assert.Contains("'engine', 'docker' or 'auto'", e.Message);
    }

    [Fact]
    public async Task Create_UsesTheFirstProviderOfThatKind()
    {
        var engine = new Provider(BackendKind.Engine, "first engine");
        var docker = new Provider(BackendKind.Docker, "docker");

        await using var backend = ContainerBackends.Create(BackendKind.Docker, k => new[] { engine, docker, new Provider(BackendKind.Docker, "second") }.Where(p => p.Kind == k).ToList());

        Assert.Equal("docker", backend.Name);
    }

    [Theory]
    [InlineData(BackendKind.Engine, "IsoTest.Engine", "ISOTEST_BACKEND=docker")]
    [InlineData(BackendKind.Docker, "IsoTest.Docker", "ISOTEST_BACKEND=engine")]
    public void Create_NoProviderReferenced_SaysWhichPackageToAdd(BackendKind kind, string package, string other)
    {
        var e = Assert.Throws<BackendUnavailableException>(() => ContainerBackends.Create(kind, _ => []));

        Assert.Contains($"dotnet add package {package}", e.Message);
        Assert.Contains(other, e.Message);
    }

    [Fact]
    public void Create_ProviderCannotRun_ItsReasonComesThroughUnwrapped()
    {
        const string reason = "cgroup memory controller missing: enable it";

        var e = Assert.Throws<BackendUnavailableException>(() => ContainerBackends.Create(
            BackendKind.Engine, _ => [new Provider(BackendKind.Engine, "never", () => throw new BackendUnavailableException(reason))]));

        Assert.Equal(reason, e.Message);
    }

    [Fact]
    public void Discovery_FindsBothReferencedBackendsThroughTheirAssemblyAttribute()
    {
        // This test project references IsoTest.Engine and IsoTest.Docker; nothing registers them in code.
        Assert.Contains(BackendDiscovery.Providers(BackendKind.Engine), p => p is IsoTest.Engine.EngineBackendProvider);
        Assert.Contains(BackendDiscovery.Providers(BackendKind.Docker), p => p is IsoTest.Docker.DockerBackendProvider);
    }

    [Fact]
    public void Discovery_ReadsTheLibrariesThatDependOnIsoTestFromTheDependencyManifest()
    {
        var names = BackendDiscovery.AssembliesDependingOnIsoTest().ToList();

        Assert.Contains("IsoTest.Engine", names);
        Assert.Contains("IsoTest.Docker", names);
        Assert.DoesNotContain("IsoTest", names);
        Assert.DoesNotContain("Polly.Core", names);
    }

    [Fact]
    public void Discovery_ParsesADepsJsonAsTheHostWritesIt()
    {
        var json = """
            {
              "runtimeTarget": { "name": ".NETCoreApp,Version=v10.0" },
              "targets": {
                ".NETCoreApp,Version=v10.0": {
                  "MyTests/1.0.0": { "dependencies": { "IsoTest.Xunit": "1.0.0" }, "runtime": { "MyTests.dll": {} } },
                  "IsoTest/1.0.0": { "dependencies": { "Polly.Core": "8.9.1" }, "runtime": { "lib/net10.0/IsoTest.dll": {} } },
                  "IsoTest.Engine/1.0.0": {
                    "dependencies": { "IsoTest": "1.0.0", "Tmds.LibC": "0.5.0" },
                    "runtime": { "lib/net10.0/IsoTest.Engine.dll": {} },
                    "native": { "runtimes/linux-x64/native/isotest-init": {} }
                  },
                  "IsoTest.Docker/1.0.0": { "dependencies": { "IsoTest": "1.0.0" }, "runtime": { "IsoTest.Docker.dll": {} } },
                  "IsoTest.Analyzer/1.0.0": { "dependencies": { "IsoTest": "1.0.0" } }
                }
              },
              "libraries": {}
            }
            """u8;

        Assert.Equal(["IsoTest.Engine", "IsoTest.Docker"], BackendDiscovery.AssembliesDependingOn(json, "IsoTest"));
    }

    [Fact]
    public async Task AutoFallback_TheFirstContainersExceptionSaysWhyTheEngineWasPassedOver()
    {
        // `dotnet test` hides stderr: the reason must travel with the error the test author sees.
        await using var docker = new FakeBackend { OnCreate = _ => throw new BackendUnavailableException("FromHost() cannot run on Docker: use FromImage.") };
        await using var backend = ContainerBackends.CreateAuto(
            () => throw new BackendUnavailableException("The init agent was not found: reference the IsoTest.Engine package."), () => docker);

        var e = await Assert.ThrowsAsync<BackendUnavailableException>(() => new ContainerBuilder().FromHost().WithCommand("true").WithBackend(backend).StartAsync());

        Assert.Contains("FromHost() cannot run on Docker", e.Message);
        Assert.Contains("ISOTEST_BACKEND=auto picked Docker, because the built-in engine cannot run here: The init agent was not found: reference the IsoTest.Engine package.", e.Message);
    }

    [Fact]
    public async Task AutoFallback_ABackendChosenExplicitlyAddsNoNote()
    {
        await using var docker = new FakeBackend { OnCreate = _ => throw new BackendUnavailableException("refused") };

        var e = await Assert.ThrowsAsync<BackendUnavailableException>(() => new ContainerBuilder().FromHost().WithCommand("true").WithBackend(docker).StartAsync());

        Assert.Equal("refused", e.Message);
    }

    [Fact]
    public async Task CreateAuto_SaysWhichBackendItPickedAndWhy()
    {
        var lines = new List<string>();
        await using var engine = new FakeBackend();
        await using var docker = new FakeBackend();

        await using var first = ContainerBackends.CreateAuto(() => engine, () => docker, lines.Add);
        await using var second = ContainerBackends.CreateAuto(() => throw new BackendUnavailableException("no user namespaces"), () => docker, lines.Add);

        Assert.Equal(2, lines.Count);
        Assert.Contains("picked the built-in engine", lines[0]);
        Assert.Contains("picked Docker", lines[1]);
        Assert.Contains("no user namespaces", lines[1]);
    }

    [Fact]
    public async Task CreateAuto_EngineAvailable_IsTheEngine()
    {
        var engine = new FakeBackend();

        await using var backend = ContainerBackends.CreateAuto(() => engine, () => throw new InvalidOperationException("docker must not be tried"));

        Assert.Same(engine, backend);
    }

    [Fact]
    public async Task CreateAuto_EngineUnavailable_FallsBackToDocker()
    {
        var docker = new FakeBackend();

        await using var backend = ContainerBackends.CreateAuto(() => throw new BackendUnavailableException("no user namespaces"), () => docker);

        Assert.Same(docker, backend);
    }

    [Fact]
    public void CreateAuto_NeitherAvailable_GivesBothReasons()
    {
        var e = Assert.Throws<BackendUnavailableException>(() => ContainerBackends.CreateAuto(
            () => throw new BackendUnavailableException("no user namespaces"),
            () => throw new BackendUnavailableException("no Docker daemon at unix:///var/run/docker.sock")));

        Assert.Contains("engine: no user namespaces", e.Message);
        Assert.Contains("docker: no Docker daemon", e.Message);
    }

    [Fact]
    public void CreateAuto_EngineBug_IsNotHiddenByTheFallback()
    {
        Assert.Throws<InvalidOperationException>(() => ContainerBackends.CreateAuto(
            () => throw new InvalidOperationException("bug"),
            () => new FakeBackend()));
    }
}

internal sealed class Provider(BackendKind kind, string name, Func<IContainerBackend>? create = null) : IContainerBackendProvider
{
    public BackendKind Kind => kind;

    public IContainerBackend Create() => create?.Invoke() ?? new NamedBackend(name);

    private sealed class NamedBackend(string name) : IContainerBackend
    {
        public string Name => name;

        public Task<IContainer> CreateAsync(ContainerSpec spec, CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
