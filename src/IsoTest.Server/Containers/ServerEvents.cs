using System.Threading.Channels;

namespace IsoTest.Server.Containers;

/// <summary>One lifecycle event in Docker's shape (GET /events).</summary>
internal sealed record DockerEvent(string Type, string Action, string Id, string From, IReadOnlyDictionary<string, string> Attributes, DateTimeOffset Time)
{
    public object ToJson() => new Dictionary<string, object?>
    {
        ["status"] = Action,
        ["id"] = Id,
        ["from"] = From,
        ["Type"] = Type,
        ["Action"] = Action,
        ["Actor"] = new Dictionary<string, object> { ["ID"] = Id, ["Attributes"] = Attributes },
        ["scope"] = "local",
        ["time"] = Time.ToUnixTimeSeconds(),
        ["timeNano"] = (Time.ToUnixTimeMilliseconds() * 1_000_000) + (Time.Ticks % TimeSpan.TicksPerMillisecond * 100),
    };
}

/// <summary>
/// Fans lifecycle events out to every GET /events listener. Each listener has a bounded queue: one that
/// stops reading loses the oldest events instead of holding the server's memory.
/// </summary>
internal sealed class ServerEvents(TimeProvider clock)
{
    private readonly Lock _lock = new();
    private readonly List<Channel<DockerEvent>> _listeners = [];

    public void Publish(string type, string action, ServerContainer container, params (string Key, string Value)[] extra)
    {
        var attributes = new Dictionary<string, string>(container.Inner.Spec.Labels)
        {
            ["name"] = container.Name,
            ["image"] = container.Request.Image ?? "",
        };
        foreach (var (key, value) in extra)
        {
            attributes[key] = value;
        }

        var e = new DockerEvent(type, action, container.Id, container.Request.Image ?? "", attributes, clock.GetUtcNow());
        lock (_lock)
        {
            foreach (var listener in _listeners)
            {
                listener.Writer.TryWrite(e);
            }
        }
    }

    public async IAsyncEnumerable<DockerEvent> ListenAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateBounded<DockerEvent>(new BoundedChannelOptions(1024) { FullMode = BoundedChannelFullMode.DropOldest });
        lock (_lock)
        {
            _listeners.Add(channel);
        }

        try
        {
            await foreach (var e in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return e;
            }
        }
        finally
        {
            lock (_lock)
            {
                _listeners.Remove(channel);
            }
        }
    }
}
