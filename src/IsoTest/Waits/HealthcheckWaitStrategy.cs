namespace IsoTest.Waits;

/// <summary>Ready when the image's healthcheck reports healthy; fails at once when it reports unhealthy.</summary>
internal sealed class HealthcheckWaitStrategy : PollingWaitStrategy
{
    public override string ToString() => "the image's healthcheck reporting healthy";

    private protected override async Task<bool> ProbeAsync(WaitAttempt attempt, CancellationToken cancellationToken)
    {
        if (attempt.Container is not IContainerHealth health)
        {
            throw new ContainerStartException(attempt.Container.Id,
                $"Wait.ForHealthcheck(): this backend's containers ({attempt.Container.GetType().Name}) do not run healthchecks: use another wait (Wait.ForPort, Wait.ForCommand).");
        }

        if (health.Healthcheck is null)
        {
            throw new ContainerStartException(attempt.Container.Id,
                $"Wait.ForHealthcheck(): the image of container {attempt.Container.Name} ({attempt.Container.Spec.RootFileSystem}) defines no HEALTHCHECK: " +
                "wait for something else (Wait.ForPort, Wait.ForCommand with the check you want) or use an image that has one.");
        }

        var now = await health.GetHealthAsync(cancellationToken).ConfigureAwait(false);
        attempt.LastResult = now.LastOutput is null ? $"{now.Status}" : $"{now.Status} after {now.FailingStreak} failed checks: {now.LastOutput}";
        return now.Status switch
        {
            HealthStatus.Healthy => true,
            HealthStatus.Unhealthy => throw new ContainerStartException(attempt.Container.Id,
                $"Container {attempt.Container.Name} became unhealthy: {health.Healthcheck} failed {now.FailingStreak} times in a row; the last said: {now.LastOutput ?? "(nothing)"}.",
                ConditionWaitStrategy.OutputTail(attempt.Container)),
            _ => false,
        };
    }
}
