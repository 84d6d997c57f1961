namespace IsoTest.Xunit.Scenarios;

/// <summary>Started when its test begins (the default, no prestart): the scenarios that check when per-test containers come and go.</summary>
public sealed class FakeService : ContainerDefinition
{
    public override ContainerBuilder Configure(ContainerBuilder builder) =>
        builder.FromHost().WithCommand("fake-service").WithBackend(new ScenarioBackend());
}

/// <summary>A per-test service two of which the pool starts ahead.</summary>
public sealed class AheadService : ContainerDefinition
{
    public override int Prestart => 2;

    public override ContainerBuilder Configure(ContainerBuilder builder) =>
        builder.FromHost().WithCommand("ahead-service").WithBackend(new ScenarioBackend());
}

public sealed class AssemblyWide : ContainerDefinition
{
    public override ContainerBuilder Configure(ContainerBuilder builder) =>
        builder.FromHost().WithCommand("assembly-wide").WithBackend(new ScenarioBackend());
}

/// <summary>Its start fails the way a real one might.</summary>
public sealed class BrokenService : ContainerDefinition
{
    public override ContainerBuilder Configure(ContainerBuilder builder) =>
        builder.FromHost().WithCommand("broken").WithBackend(new ScenarioBackend
        {
            OnStart = _ => throw new InvalidOperationException("bind: port 6379 already in use"),
        });
}

/// <summary>Its start never finishes (but honours cancellation).</summary>
public sealed class StuckService : ContainerDefinition
{
    public override TimeSpan StartTimeout => TimeSpan.FromMilliseconds(300);

    public override ContainerBuilder Configure(ContainerBuilder builder) =>
        builder.FromHost().WithCommand("stuck").WithBackend(new ScenarioBackend
        {
            OnStart = ct => Task.Delay(Timeout.Infinite, ct),
        });
}

/// <summary>Its start never finishes and ignores cancellation: the test must still end.</summary>
public sealed class DeafService : ContainerDefinition
{
    public override TimeSpan StartTimeout => TimeSpan.FromMilliseconds(200);

    public override ContainerBuilder Configure(ContainerBuilder builder) =>
        builder.FromHost().WithCommand("deaf").WithBackend(new ScenarioBackend
        {
            OnStart = _ => new TaskCompletionSource().Task,
        });
}

public sealed class SeedFails : ContainerDefinition
{
    public override ContainerBuilder Configure(ContainerBuilder builder) =>
        builder.FromHost().WithCommand("seed-fails").WithBackend(new ScenarioBackend());

    public override Task OnStartedAsync(IContainer container, CancellationToken cancellationToken) =>
        throw new InvalidOperationException("relation \"users\" already exists");
}

public sealed class Seeded : ContainerDefinition
{
    public override ContainerBuilder Configure(ContainerBuilder builder) =>
        builder.FromHost().WithCommand("seeded").WithBackend(new ScenarioBackend());

    public override Task OnStartedAsync(IContainer container, CancellationToken cancellationToken)
    {
        ((ScenarioContainer)container).Write("seeded 3 rows");
        Recorder.Add("seeded", "Seeded", container.Id);
        return Task.CompletedTask;
    }
}

/// <summary>
/// Two definitions whose starts each wait until both are starting: started one after the other they would
/// never both arrive, and the first gives up (after 20 s) with a message that says so.
/// </summary>
public static class Rendezvous
{
    private static readonly Lock s_gate = new();
    private static TaskCompletionSource s_both = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private static int s_arrived;

    public static void Reset()
    {
        lock (s_gate)
        {
            s_arrived = 0;
            s_both = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public static async Task ArriveAsync(CancellationToken cancellationToken)
    {
        Task both;
        lock (s_gate)
        {
            if (++s_arrived == 2)
            {
                s_both.TrySetResult();
            }

            both = s_both.Task;
        }

        try
        {
            await both.WaitAsync(TimeSpan.FromSeconds(20), cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new InvalidOperationException("the other container never started while this one was starting: starts ran one at a time");
        }
    }
}

public sealed class GateA : ContainerDefinition
{
    public override TimeSpan StartTimeout => TimeSpan.FromSeconds(30);

    public override ContainerBuilder Configure(ContainerBuilder builder) =>
        builder.FromHost().WithCommand("gate-a").WithBackend(new ScenarioBackend { OnStart = Rendezvous.ArriveAsync });
}

public sealed class GateB : ContainerDefinition
{
    public override TimeSpan StartTimeout => TimeSpan.FromSeconds(30);

    public override ContainerBuilder Configure(ContainerBuilder builder) =>
        builder.FromHost().WithCommand("gate-b").WithBackend(new ScenarioBackend { OnStart = Rendezvous.ArriveAsync });
}

/// <summary>Not a ContainerDefinition: declaring it is a mistake the test must report.</summary>
public sealed class NotADefinition
{
}
