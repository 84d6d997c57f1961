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
    public async Task CreateEngine_StaticCreate_IsPreferred()
    {
        await using var backend = ContainerBackends.CreateEngine(typeof(EngineWithCreate).AssemblyQualifiedName!);

        Assert.Equal("via Create", backend.Name);
    }

    [Fact]
    public async Task CreateEngine_PublicConstructor_IsUsedWithoutCreate()
    {
        await using var backend = ContainerBackends.CreateEngine(typeof(EngineWithConstructor).AssemblyQualifiedName!);

        Assert.Equal("via constructor", backend.Name);
    }

    [Fact]
    public void CreateEngine_EngineCannotRun_ItsReasonComesThroughUnwrapped()
    {
        var e = Assert.Throws<BackendUnavailableException>(() => ContainerBackends.CreateEngine(typeof(EngineThatCannotRun).AssemblyQualifiedName!));

        Assert.Equal(EngineThatCannotRun.Reason, e.Message);
    }

    [Fact]
    public void CreateEngine_TypeMissing_SaysItIsNotDeployed()
    {
        var e = Assert.Throws<BackendUnavailableException>(() => ContainerBackends.CreateEngine("IsoTest.Engine.Nope, IsoTest.Engine"));

        Assert.Contains("is not deployed", e.Message);
        Assert.Contains("ISOTEST_BACKEND=docker", e.Message);
    }

    [Fact]
    public void CreateEngine_NoWayToConstruct_SaysTheVersionsDoNotMatch()
    {
        var e = Assert.Throws<BackendUnavailableException>(() => ContainerBackends.CreateEngine(typeof(EngineWithoutFactory).AssemblyQualifiedName!));

        Assert.Contains("neither a public static Create() nor a public parameterless constructor", e.Message);
    }

    [Fact]
    public void CreateEngine_NotABackend_SaysSo()
    {
        var e = Assert.Throws<BackendUnavailableException>(() => ContainerBackends.CreateEngine(typeof(NotABackend).AssemblyQualifiedName!));

        Assert.Contains("is not an IContainerBackend", e.Message);
    }

    [Fact]
    public async Task Create_Engine_FindsTheRealEngineByItsName()
    {
        var engineType = Type.GetType(ContainerBackends.EngineTypeName, throwOnError: false);
        if (engineType is null)
        {
            // The engine type has not landed in IsoTest.Engine yet: the error must say so.
            var e = Assert.Throws<BackendUnavailableException>(() => ContainerBackends.Create(BackendKind.Engine));
            Assert.Contains("is not deployed", e.Message);
            return;
        }

        try
        {
            await using var backend = ContainerBackends.Create(BackendKind.Engine);
            Assert.Equal("engine", backend.Name);
        }
        catch (BackendUnavailableException e)
        {
            // Found, but cannot run on this machine: then the reason is the engine's, not a lookup failure.
            Assert.DoesNotContain("is not deployed", e.Message);
        }
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

public sealed class EngineWithCreate : IContainerBackend
{
    private EngineWithCreate()
    {
    }

    public string Name => "via Create";

    public static IContainerBackend Create() => new EngineWithCreate();

    public Task<IContainer> CreateAsync(ContainerSpec spec, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

public sealed class EngineWithConstructor : IContainerBackend
{
    public string Name => "via constructor";

    public Task<IContainer> CreateAsync(ContainerSpec spec, CancellationToken cancellationToken = default) => throw new NotSupportedException();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

public static class EngineThatCannotRun
{
    public const string Reason = "cgroup memory controller missing: enable it";

    public static IContainerBackend Create() => throw new BackendUnavailableException(Reason);
}

public sealed class EngineWithoutFactory
{
    private EngineWithoutFactory()
    {
    }
}

public sealed class NotABackend
{
}
