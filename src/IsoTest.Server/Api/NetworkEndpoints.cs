using IsoTest.Server.Containers;
using IsoTest.Server.Http;
using IsoTest.Server.Networks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace IsoTest.Server.Api;

/// <summary>/networks/...: create, list, inspect and remove user-defined networks; the predefined three are listed and inspected.</summary>
internal static class NetworkEndpoints
{
    public static void Map(IEndpointRouteBuilder app, NetworkTable networks, ContainerTable containers)
    {
        app.MapPost("/networks/create", async (HttpContext context) =>
        {
            var request = await ServerJson.ReadAsync(context.Request, new NetworkCreateRequest(), context.RequestAborted).ConfigureAwait(false);
            if (request.Internal is false && request.Driver is not (null or "" or "bridge"))
            {
                throw DockerApiException.BadRequest($"driver {request.Driver} is not supported: IsoTest's networks are bridges (leave --driver out)");
            }

            // Only an explicit "Internal": false asks for a way out (IsoTest's Docker backend for WithOutboundAccess): the
            // engine's networks stay without one otherwise, its fast and private default.
            var network = await networks.CreateAsync(request.Name, request.Labels ?? [], outbound: request.Internal == false, context.RequestAborted).ConfigureAwait(false);
            return Results.Json(new Dictionary<string, object?> { ["Id"] = network.Id, ["Warning"] = "" }, ServerJson.Options, statusCode: StatusCodes.Status201Created);
        });

        app.MapGet("/networks", (HttpContext context) => List(context, networks, containers));

        app.MapGet("/networks/{id}", (string id) => Results.Json(View(Find(networks, id), containers), ServerJson.Options));

        app.MapDelete("/networks/{id}", async (string id) =>
        {
            var view = Find(networks, id);
            if (view.Network is not { } network)
            {
                throw new DockerApiException(StatusCodes.Status403Forbidden, $"{view.Name} is a pre-defined network and cannot be removed");
            }

            if (Members(network.Name, containers).Any())
            {
                throw DockerApiException.Conflict($"error while removing network: network {network.Name} id {network.Id} has active endpoints");
            }

            await networks.RemoveAsync(network).ConfigureAwait(false);
            return Results.NoContent();
        });

        app.MapPost("/networks/{id}/connect", async (string id, HttpContext context) =>
        {
            var request = await ServerJson.ReadAsync(context.Request, new ConnectRequest(), context.RequestAborted).ConfigureAwait(false);
            var network = UserDefined(Find(networks, id), "connect to");
            if (HostPort(request.Container) is { } port)
            {
                await network.Inner.ExposeHostPortsAsync(port, context.RequestAborted).ConfigureAwait(false);
                return Results.Ok();
            }

            var container = Changeable(containers.Find(request.Container ?? ""), network, "connecting");
            if (SpecMapper.UserNetworks(container.Request).Contains(network.Name))
            {
                throw new DockerApiException(StatusCodes.Status403Forbidden, $"endpoint with name {container.Name} already exists in network {network.Name}");
            }

            var changed = Copy(container.Request);
            changed.NetworkingConfig ??= new NetworkingConfigRequest();
            changed.NetworkingConfig.EndpointsConfig ??= [];
            changed.NetworkingConfig.EndpointsConfig[network.Name] = new EndpointSettingsRequest { Aliases = request.EndpointConfig?.Aliases };
            await containers.RecreateAsync(container, changed, context.RequestAborted).ConfigureAwait(false);
            return Results.Ok();
        });

        app.MapPost("/networks/{id}/disconnect", async (string id, HttpContext context) =>
        {
            var request = await ServerJson.ReadAsync(context.Request, new ConnectRequest(), context.RequestAborted).ConfigureAwait(false);
            var network = UserDefined(Find(networks, id), "disconnect from");
            var container = containers.Find(request.Container ?? "");
            if (!SpecMapper.UserNetworks(container.Request).Contains(network.Name))
            {
                throw new DockerApiException(StatusCodes.Status403Forbidden, $"container {container.Id} is not connected to network {network.Name}");
            }

            Changeable(container, network, "disconnecting");
            var changed = Copy(container.Request);
            changed.NetworkingConfig?.EndpointsConfig?.Remove(network.Name);
            if (changed.HostConfig?.NetworkMode == network.Name)
            {
                changed.HostConfig.NetworkMode = "default";
            }

            await containers.RecreateAsync(container, changed, context.RequestAborted).ConfigureAwait(false);
            return Results.Ok();
        });

        app.MapPost("/networks/prune", async () =>
        {
            var unused = networks.All.Where(n => !Members(n.Name, containers).Any()).ToList();
            foreach (var network in unused)
            {
                await networks.RemoveAsync(network).ConfigureAwait(false);
            }

            return Results.Json(new Dictionary<string, object?> { ["NetworksDeleted"] = unused.Select(n => n.Name).ToList() }, ServerJson.Options);
        });
    }

    private static IResult List(HttpContext context, NetworkTable networks, ContainerTable containers)
    {
        var filters = QueryFilters.Parse(context.Request.Query["filters"], ["name", "id", "label", "type"]);
        var views = NetworkTable.Predefined.Select(p => new NetworkView(p, NetworkTable.PredefinedId(p), null))
            .Concat(networks.All.Select(n => new NetworkView(n.Name, n.Id, n)))
            .Where(v => filters.All(f => f.Key switch
            {
                "name" => f.Value.Any(n => v.Name.Contains(n, StringComparison.Ordinal)),
                "id" => f.Value.Any(id => v.Id.StartsWith(id, StringComparison.Ordinal)),
                "label" => QueryFilters.MatchesLabels(f.Value, v.Network?.Labels ?? new Dictionary<string, string>()),
                _ => f.Value.Contains(v.Network is null ? "builtin" : "custom"),
            }))
            .Select(v => View(v, containers))
            .ToList();
        return Results.Json(views, ServerJson.Options);
    }

    private static NetworkView Find(NetworkTable networks, string id)
    {
        if (NetworkTable.Predefined.FirstOrDefault(p => p == id || NetworkTable.PredefinedId(p).StartsWith(id, StringComparison.Ordinal)) is { } predefined)
        {
            return new NetworkView(predefined, NetworkTable.PredefinedId(predefined), null);
        }

        return networks.TryFind(id) is { } network
            ? new NetworkView(network.Name, network.Id, network)
            : throw new DockerApiException(StatusCodes.Status404NotFound, $"network {id} not found");
    }

    private static ServerNetwork UserDefined(NetworkView view, string verb) =>
        view.Network ?? throw new DockerApiException(StatusCodes.Status403Forbidden, $"cannot {verb} the pre-defined network {view.Name}: IsoTest's server keeps bridge, host and none as a container's create left them");

    /// <summary>
    /// The engine joins a container's networks when it makes it, so a connect or disconnect makes a created container
    /// again: refused, with the fix, once it ran or had files copied in (which making it again would lose).
    /// </summary>
    private static ServerContainer Changeable(ServerContainer container, ServerNetwork network, string verb)
    {
        if (container.Inner.State != ContainerState.Created || container.StartedAt is not null)
        {
            throw DockerApiException.BadRequest($"{verb} container {container.Name} and network {network.Name} after it started is not supported by IsoTest's server: connect before docker start (docker create, docker network connect, docker start), or give --network {network.Name} at create");
        }

        if (container.FilesCopiedIn)
        {
            throw DockerApiException.BadRequest($"{verb} container {container.Name} and network {network.Name} after files were copied into it is not supported by IsoTest's server: connect first, then docker cp");
        }

        return container;
    }

    /// <summary>The port of the Docker backend's pseudo-container for exposing a host port (DockerNetwork.HostPortPseudoContainer), else null.</summary>
    private static int? HostPort(string? container) =>
        container is { } c && c.StartsWith(HostPortPrefix, StringComparison.Ordinal)
            && int.TryParse(c.AsSpan(HostPortPrefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)
            ? port
            : null;

    private const string HostPortPrefix = "isotest.host-port/";

    private static CreateContainerRequest Copy(CreateContainerRequest request) =>
        System.Text.Json.JsonSerializer.Deserialize<CreateContainerRequest>(System.Text.Json.JsonSerializer.Serialize(request, ServerJson.Options), ServerJson.Options)!;

    private static IEnumerable<ServerContainer> Members(string network, ContainerTable containers) =>
        containers.All.Where(c => SpecMapper.UserNetworks(c.Request).Contains(network));

    private static Dictionary<string, object?> View(NetworkView view, ContainerTable containers) => new()
    {
        ["Name"] = view.Name,
        ["Id"] = view.Id,
        ["Created"] = ContainerViews.Time(view.Network?.Created ?? DateTimeOffset.UnixEpoch),
        ["Scope"] = "local",
        ["Driver"] = view.Name switch { "host" => "host", "none" => "null", _ => "bridge" },
        ["EnableIPv6"] = false,
        ["Internal"] = view.Network is { Outbound: false },   // no traffic beyond the host unless asked for at create
        ["Attachable"] = false,
        ["Ingress"] = false,
        ["IPAM"] = new Dictionary<string, object?>
        {
            ["Driver"] = "default",
            ["Options"] = new Dictionary<string, string>(),
            ["Config"] = view.Network?.Addresses is { } a ? new[] { new Dictionary<string, string> { ["Subnet"] = a.Subnet, ["Gateway"] = a.Gateway } } : [],
        },
        ["Containers"] = view.Network is null ? new Dictionary<string, object?>()
            : Members(view.Name, containers).ToDictionary(c => c.Id, c => (object?)new Dictionary<string, object?> { ["Name"] = c.Name, ["EndpointID"] = c.Id }),
        ["Options"] = new Dictionary<string, string>(),
        ["Labels"] = view.Network?.Labels ?? new Dictionary<string, string>(),
    };

    private sealed record NetworkView(string Name, string Id, ServerNetwork? Network);

    private sealed class ConnectRequest
    {
        public string? Container { get; set; }

        public EndpointSettingsRequest? EndpointConfig { get; set; }
    }

    private sealed class NetworkCreateRequest
    {
        public string? Name { get; set; }

        public string? Driver { get; set; }

        public bool? Internal { get; set; }

        public Dictionary<string, string>? Labels { get; set; }
    }
}
