using IsoTest.Tests.Fakes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace IsoTest.Tests.DependencyInjection;

public class IsoTestServiceCollectionExtensionsTests
{
    [Fact]
    public async Task AddIsoTest_BackendFactory_ResolvesThatBackendOnceAndBuildersUseIt()
    {
        var backend = new FakeBackend();
        var calls = 0;
        await using var provider = new ServiceCollection()
            .AddIsoTest(o => o.BackendFactory = _ =>
            {
                calls++;
                return backend;
            })
            .BuildServiceProvider();

        Assert.Same(backend, provider.GetRequiredService<IContainerBackend>());
        Assert.Same(backend, provider.GetRequiredService<IContainerBackend>());
        var container = await provider.GetRequiredService<ContainerBuilder>().FromHost().WithCommand("true").StartAsync();

        Assert.Equal(1, calls);
        Assert.Same(Assert.Single(backend.Created), container);
    }

    [Fact]
    public async Task AddIsoTest_Builders_AreFreshAndBoundToBackendAndClock()
    {
        var backend = new FakeBackend();
        var clock = new FakeTimeProvider();
        await using var provider = new ServiceCollection()
            .AddIsoTest(o =>
            {
                o.BackendFactory = _ => backend;
                o.TimeProvider = clock;
            })
            .BuildServiceProvider();

        var first = provider.GetRequiredService<ContainerBuilder>();
        var second = provider.GetRequiredService<IContainerBuilderFactory>().CreateBuilder();

        Assert.NotSame(first, second);
        Assert.Same(provider.GetRequiredService<IContainerBuilderFactory>(), provider.GetRequiredService<IContainerBuilderFactory>());
        Assert.All(new[] { first, second }, b =>
        {
            Assert.Same(backend, b.State.Backend);
            Assert.Same(clock, b.State.TimeProvider);
        });
    }

    [Fact]
    public async Task AddIsoTest_NoClockGiven_UsesARegisteredTimeProvider()
    {
        var clock = new FakeTimeProvider();
        await using var provider = new ServiceCollection()
            .AddSingleton<TimeProvider>(clock)
            .AddIsoTest(o => o.BackendFactory = _ => new FakeBackend())
            .BuildServiceProvider();

        Assert.Same(clock, provider.GetRequiredService<ContainerBuilder>().State.TimeProvider);
    }

    [Fact]
    public async Task AddIsoTest_ProviderDisposesTheBackendItCreated()
    {
        var backend = new FakeBackend();
        var provider = new ServiceCollection().AddIsoTest(o => o.BackendFactory = _ => backend).BuildServiceProvider();
        provider.GetRequiredService<IContainerBackend>();

        await provider.DisposeAsync();

        Assert.True(backend.Disposed);
    }

    [Fact]
    public async Task AddIsoTest_EarlierRegistrationWins()
    {
        var mine = new FakeBackend();
        await using var provider = new ServiceCollection()
            .AddSingleton<IContainerBackend>(mine)
            .AddIsoTest(o => o.BackendFactory = _ => throw new InvalidOperationException("must not be called"))
            .BuildServiceProvider();

        Assert.Same(mine, provider.GetRequiredService<IContainerBackend>());
        Assert.Same(mine, provider.GetRequiredService<ContainerBuilder>().State.Backend);
    }

    [Fact]
    public async Task AddIsoTest_BackendKind_CreatesThatBackend()
    {
        await using var provider = new ServiceCollection().AddIsoTest(o => o.Backend = BackendKind.Docker).BuildServiceProvider();

        try
        {
            var backend = provider.GetRequiredService<IContainerBackend>();
            Assert.Equal("docker", backend.Name);
        }
        catch (BackendUnavailableException e)
        {
            // Docker was chosen, not tried as a fallback: the reason is Docker's own.
            Assert.Contains("Docker", e.Message);
            Assert.DoesNotContain("No backend can run here", e.Message);
        }
    }

    [Fact]
    public async Task AddIsoTest_ProvidersRegisteredInTheContainer_ComeFirst()
    {
        await using var provider = new ServiceCollection()
            .AddSingleton<IContainerBackendProvider>(new Backends.Provider(BackendKind.Docker, "registered docker"))
            .AddIsoTest(o => o.Backend = BackendKind.Docker)
            .BuildServiceProvider();

        Assert.Equal("registered docker", provider.GetRequiredService<IContainerBackend>().Name);
    }

    [Fact]
    public void AddIsoTestEngineAndDocker_RegisterEachPackagesProviderOnce()
    {
        using var provider = new ServiceCollection().AddIsoTestEngine().AddIsoTestDocker().AddIsoTestEngine().BuildServiceProvider();

        var providers = provider.GetServices<IContainerBackendProvider>().ToList();

        Assert.Equal(2, providers.Count);
        Assert.Single(providers, p => p is IsoTest.Engine.EngineBackendProvider && p.Kind == BackendKind.Engine);
        Assert.Single(providers, p => p is IsoTest.Docker.DockerBackendProvider && p.Kind == BackendKind.Docker);
    }

    [Fact]
    public void AddIsoTest_UndefinedBackendKind_FailsAtRegistration()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ServiceCollection().AddIsoTest(o => o.Backend = (BackendKind)42));
    }
}
