using System.Diagnostics.CodeAnalysis;

namespace IsoTest.Engine.Containers;

/// <summary>
/// The containers of one engine, by id and by name. A name is reserved atomically before anything is
/// made, so of two creates with one name exactly one gets it; lookups take an id, a unique id prefix
/// or a name, as the Docker API does.
/// </summary>
internal sealed class ContainerRegistry
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, EngineContainer?> _byId = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _idByName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _nameById = new(StringComparer.Ordinal);

    /// <summary>Containers that exist (created and not yet removed).</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _byId.Values.Count(c => c is not null);
            }
        }
    }

    /// <summary>Every container that exists.</summary>
    public IReadOnlyList<EngineContainer> All
    {
        get
        {
            lock (_lock)
            {
                return [.. _byId.Values.OfType<EngineContainer>()];
            }
        }
    }

    /// <summary>Reserves <paramref name="id"/> and <paramref name="name"/> for a container about to be made.</summary>
    /// <returns>False, reserving nothing, when another container (made or being made) has the name.</returns>
    public bool TryReserve(string id, string name)
    {
        lock (_lock)
        {
            if (!_idByName.TryAdd(name, id))
            {
                return false;
            }

            _byId.Add(id, null);
            _nameById.Add(id, name);
            return true;
        }
    }

    /// <summary>The reserved container now exists: lookups find it.</summary>
    public void Publish(EngineContainer container)
    {
        lock (_lock)
        {
            _byId[container.Id] = container;
        }
    }

    /// <summary>Frees the id and the name (creation failed, or the container was removed).</summary>
    public void Release(string id)
    {
        lock (_lock)
        {
            _byId.Remove(id);
            if (_nameById.Remove(id, out var name))
            {
                _idByName.Remove(name);
            }
        }
    }

    /// <summary>Finds a container by full id, name, or an id prefix that only one container has.</summary>
    public bool TryFind(string idOrName, [NotNullWhen(true)] out EngineContainer? container)
    {
        container = null;
        if (string.IsNullOrEmpty(idOrName))
        {
            return false;
        }

        lock (_lock)
        {
            if (_byId.TryGetValue(idOrName, out container) || (_idByName.TryGetValue(idOrName, out var id) && _byId.TryGetValue(id, out container)))
            {
                return container is not null;
            }

            var matches = _byId.Where(p => p.Value is not null && p.Key.StartsWith(idOrName, StringComparison.Ordinal)).Take(2).ToList();
            container = matches.Count == 1 ? matches[0].Value : null;
            return container is not null;
        }
    }
}
