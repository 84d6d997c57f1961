using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using IsoTest.Server.Api;
using IsoTest.Server.Http;
using IsoTest.Server.Images;

namespace IsoTest.Server.Containers;

/// <summary>
/// The server's containers: Docker ids and names (reserved atomically, so two creates with one name
/// cannot both win), lookup by id, unique id prefix or name as dockerd does, and removal.
/// </summary>
internal sealed partial class ContainerTable(IContainerBackend backend, ImageCatalog images, Networks.NetworkTable networks, Volumes.VolumeTable volumes, ServerEvents events, TimeProvider clock) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, ServerContainer> _byId = new();
    private readonly ConcurrentDictionary<string, string> _names = new();   // name -> id ("" while being created)

    public IEnumerable<ServerContainer> All => _byId.Values.OrderByDescending(c => c.Created);

    public async Task<ServerContainer> CreateAsync(CreateContainerRequest request, string? name, CancellationToken cancellationToken)
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        if (!string.IsNullOrEmpty(name))
        {
            name = name.TrimStart('/');
            if (!ValidName().IsMatch(name))
            {
                throw DockerApiException.BadRequest($"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
            }
        }
        else
        {
            name = $"isotest_{id[..12]}";
        }

        if (!_names.TryAdd(name, ""))
        {
            var owner = _names.GetValueOrDefault(name, "");
            throw DockerApiException.Conflict($"Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". You have to remove (or rename) that container to be able to reuse that name.");
        }

        try
        {
            var image = images.Resolve(request.Image);
            var inner = ReaperContainer.IsReaperImage(request.Image)
                ? Reaper(id, request)
                : await backend.CreateAsync(Spec(request, image, id, name), cancellationToken).ConfigureAwait(false);
            var container = new ServerContainer(id, name, request, image, inner, clock.GetUtcNow());
            _byId[id] = container;
            _names[name] = id;
            events.Publish("container", "create", container);
            return container;
        }
        catch
        {
            _names.TryRemove(name, out _);
            throw;
        }
    }

    /// <summary>
    /// Makes a created (never started) container again for <paramref name="changed"/>, the engine's networks being
    /// joined when a container is made: dockerd's connect and disconnect before start. The old one goes first
    /// (its names on the networks are the new one's); if the new one cannot be made, the old request is made again.
    /// </summary>
    public async Task RecreateAsync(ServerContainer container, CreateContainerRequest changed, CancellationToken cancellationToken)
    {
        await container.Inner.DisposeAsync().ConfigureAwait(false);
        try
        {
            container.Replace(changed, await backend.CreateAsync(Spec(changed, container.Image, container.Id, container.Name), cancellationToken).ConfigureAwait(false));
        }
        catch
        {
            container.Replace(container.Request, await backend.CreateAsync(Spec(container.Request, container.Image, container.Id, container.Name), CancellationToken.None).ConfigureAwait(false));
            throw;
        }
    }

    private ContainerSpec Spec(CreateContainerRequest request, ResolvedImage image, string id, string name) =>
        SpecMapper.ToBuilder(request, image, id, name, networks, volumes).Build();

    /// <summary>By full id, unique id prefix, or name (with or without the leading slash), as dockerd resolves them.</summary>
    public ServerContainer Find(string idOrName)
    {
        if (_byId.TryGetValue(idOrName, out var byId))
        {
            return byId;
        }

        var name = idOrName.TrimStart('/');
        if (_names.TryGetValue(name, out var id) && id.Length > 0 && _byId.TryGetValue(id, out var byName))
        {
            return byName;
        }

        var matches = _byId.Values.Where(c => c.Id.StartsWith(idOrName, StringComparison.Ordinal)).Take(2).ToList();
        return matches.Count switch
        {
            1 => matches[0],
            0 => throw DockerApiException.NoSuchContainer(idOrName),
            _ => throw DockerApiException.BadRequest($"multiple containers found with provided prefix: {idOrName}"),
        };
    }

    /// <summary>Testcontainers' reaper, served in process (see <see cref="ReaperContainer"/>).</summary>
    private ReaperContainer Reaper(string id, CreateContainerRequest request)
    {
        var timeout = request.Env?.FirstOrDefault(e => e.StartsWith("RYUK_RECONNECTION_TIMEOUT=", StringComparison.Ordinal)) is { } setting
            && TimeSpan.TryParse("00:00:" + setting.Split('=', 2)[1].TrimEnd('s'), System.Globalization.CultureInfo.InvariantCulture, out var t) ? t : TimeSpan.FromSeconds(10);
        var spec = new ContainerSpec
        {
            RootFileSystem = RootFileSystem.Host,
            Command = ["ryuk"],
            Ports = [ReaperContainer.Port],
            Labels = request.Labels ?? [],
        };
        return new ReaperContainer(id, spec, ReapAsync, timeout, clock);
    }

    /// <summary>Removes every container carrying one of the labels (key and value), as Ryuk does when its client is gone.</summary>
    private async Task ReapAsync(IReadOnlyList<KeyValuePair<string, string>> labels)
    {
        var doomed = _byId.Values
            .Where(c => c.Inner is not ReaperContainer && labels.Any(l => c.Inner.Spec.Labels.TryGetValue(l.Key, out var v) && v == l.Value))
            .ToList();
        await Task.WhenAll(doomed.Select(RemoveAsync)).ConfigureAwait(false);
    }

    public async Task StartAsync(ServerContainer container, CancellationToken cancellationToken)
    {
        await container.StartAsync(OnExitedAsync, clock, cancellationToken).ConfigureAwait(false);
        events.Publish("container", "start", container);
    }

    private async Task OnExitedAsync(ServerContainer container)
    {
        events.Publish("container", "die", container, ("exitCode", (container.Inner.ExitCode ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        if (container.AutoRemove)
        {
            await RemoveAsync(container).ConfigureAwait(false);
        }
    }

    public async Task RemoveAsync(ServerContainer container)
    {
        if (!_byId.TryRemove(container.Id, out _))
        {
            return;
        }

        container.Removing = true;
        try
        {
            await container.Inner.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _names.TryRemove(container.Name, out _);
            container.MarkRemoved();
            events.Publish("container", "destroy", container);
        }
    }

    public void Rename(ServerContainer container, string name)
    {
        name = name.TrimStart('/');
        if (!ValidName().IsMatch(name))
        {
            throw DockerApiException.BadRequest($"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        }

        if (!_names.TryAdd(name, container.Id))
        {
            throw DockerApiException.Conflict($"Conflict. The container name \"/{name}\" is already in use by container \"{_names.GetValueOrDefault(name)}\". You have to remove (or rename) that container to be able to reuse that name.");
        }

        _names.TryRemove(container.Name, out _);
        container.Name = name;
        events.Publish("container", "rename", container);
    }

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(_byId.Values.ToList().Select(RemoveAsync)).ConfigureAwait(false);
    }

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", RegexOptions.CultureInvariant)]
    private static partial Regex ValidName();
}
