"""The one place that builds the bridge from its config and wires every part together.

It is longer than the other modules (about 500 lines) on purpose: DESIGN.md keeps the
wiring in one place, and each `_build_*` step is short; a part that grows logic of its own
belongs in its package, not here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.config import Config
from bridge.core.archive import Archive
from bridge.core.attachments import AttachmentFiles
from bridge.core.auto_replies import AutoReplies
from bridge.core.blocking import Blocking
from bridge.core.broadcast import Broadcasts
from bridge.core.buyer_desk import BuyerDesk
from bridge.core.cards import BuyerCards
from bridge.core.commands import SellerCommands
from bridge.core.contact_policy import ContactGuard, ContactScreen, Policy
from bridge.core.delivery import Backoff, Courier
from bridge.core.desk_commands import DeskCommands
from bridge.core.duties import DELIVERY_DUTIES, SoleDuties, while_held
from bridge.core.erasure import ERASURE_DUTY, BuyerErasure, BuyerExport
from bridge.core.events import Announcer
from bridge.core.feedback import FeedbackDesk
from bridge.core.ids import SiteID, UserID
from bridge.core.labels import SellerMarks
from bridge.core.limits import Rate, RateLimiter, UploadSlots
from bridge.core.mailing import BuyerDigest, Mailing
from bridge.core.marketplace_desk import MarketplaceDesk
from bridge.core.models import Buyer, Conversation, Site
from bridge.core.offers import OfferDesk, OfferRoom
from bridge.core.orders import OrderDesk, OrderRoom
from bridge.core.ports import HomeserverUnavailable, MatrixRejected, TranslationProvider
from bridge.core.profile import ProfileCommand
from bridge.core.replies import SellerReplies
from bridge.core.response_time import Reminders, ResponseTimes
from bridge.core.stats import ResponseStats
from bridge.core.tasks import TaskKeeper
from bridge.core.team import AnsweringRoles
from bridge.core.templates import TemplateDesk
from bridge.core.translation import Translations
from bridge.http import BODY_TIMEOUT, OUTAGES, errors_middleware, protocol_logger
from bridge.marketplace.api import marketplace_routes
from bridge.marketplace.erasure import erasure_routes
from bridge.marketplace.labels import label_routes
from bridge.marketplace.offers import offer_routes
from bridge.marketplace.orders import order_routes
from bridge.marketplace.stats import stats_routes
from bridge.marketplace.templates import template_routes
from bridge.marketplace.webhooks import RetryPolicy, WebhookDispatcher, WebhookTarget
from bridge.matrix.appservice import appservice_app
from bridge.matrix.catchup import Catchup
from bridge.matrix.erasure import MatrixErasure
from bridge.matrix.gateway import MatrixGateway, without_silent_retries
from bridge.matrix.identifiers import MatrixNames
from bridge.matrix.orders import MatrixOrders
from bridge.matrix.rooms import MatrixRooms
from bridge.matrix.transactions import APPSERVICE_DUTY, TransactionProcessor
from bridge.media.charts import paint_chart
from bridge.media.images import ProductImages
from bridge.media.library import MediaLibrary
from bridge.notify.compose import MailComposer
from bridge.notify.files import MailedFiles, mailed_file_routes
from bridge.notify.inbound import InboundListener, MailReplies
from bridge.notify.sender import MailRetry, MailSender
from bridge.notify.unsubscribe import MailChoices, unsubscribe_routes
from bridge.operations.health import Readiness, operations_routes
from bridge.operations.metrics import PrometheusMeter
from bridge.pane.access import PaneDesk, PaneSessions, membership_in, session_key
from bridge.pane.api import PaneContext, pane_routes
from bridge.pane.openid import OpenIdCheck
from bridge.store.database import (
    SqliteClaim,
    create_engine,
    create_read_engine,
    is_outage,
    is_sqlite,
    migrate,
    sessions,
)
from bridge.store.depths import database_answers, queue_depths
from bridge.store.replicas import ReplicaDuties
from bridge.store.repository import SqlRepository
from bridge.translation.detection import LinguaDetector
from bridge.translation.providers import DeepTranslatorProvider, make_provider
from bridge.widget.api import WidgetContext, WidgetSite, cors_middleware, widget_routes
from bridge.widget.stream import FeedHub
from bridge.widget.tokens import issue_buyer_token

logger = logging.getLogger(__name__)

HOMESERVER_KEEPALIVE_SECONDS = 180.0
# How long a stop waits for the transactions in hand to be applied.
STOP_GRACE_SECONDS = 5.0
# How long a stop waits, once it stopped listening, for connections just accepted.
ACCEPT_SETTLE_SECONDS = 0.05

# Duties (`core/duties.py`) besides the deliveries', the webhooks' and the appservice's.
MAIL_DUTY = "mail"
ARCHIVE_DUTY = "archive"
REMINDERS_DUTY = "reminders"
ADMIN_ROOMS_DUTY = "admin-rooms"
# What replicas tell each other when a seller's or buyer's row changed.
PARTIES_TOPIC = "parties"

BOT_DISPLAY_NAME = "Bazaar"


@dataclass(frozen=True)
class Tuning:
    """Timings that tests shorten; production keeps the defaults."""

    delivery_backoff: Backoff = field(default_factory=Backoff)
    webhook_retry: RetryPolicy = field(default_factory=RetryPolicy)
    buyer_rates: dict[str, Rate] | None = None
    # How long a translation provider that failed is left alone.
    translation_pause: float = 30.0
    mail_retry: MailRetry = field(default_factory=MailRetry)
    # Trusted for the relay's certificate (tests: a self-signed one); None: the system's.
    mail_tls_context: ssl.SSLContext | None = None
    digest_every_seconds: float = 60.0
    # How often the catch-up looks whether the homeserver is up (`matrix/catchup.py`).
    homeserver_look_seconds: float = 5.0
    # With replicas: how often each looks for duties that are free (a dead one's).
    replica_look_seconds: float = 1.0


def sites_of(config: Config) -> dict[SiteID, Site]:
    """The configured sites as the domain knows them."""
    return {
        SiteID(site.id): Site(
            site_id=SiteID(site.id),
            name=site.name,
            language=site.language,
            has_webhook=site.webhook_url is not None,
            admins=tuple(UserID(admin) for admin in site.admins),
            share_buyer_contact=site.share_buyer_contact,
            currency=site.currency,
        )
        for site in config.sites
    }


class Bridge:
    """A running bridge: both HTTP servers, the courier, the webhook dispatcher."""

    def __init__(self, config: Config, tuning: Tuning = Tuning()) -> None:
        self.config = config
        self.tuning = tuning
        self.tasks = TaskKeeper()
        self._runners: list[web.AppRunner] = []
        self._inbound: InboundListener | None = None
        self._http: aiohttp.ClientSession | None = None
        self._translator: TranslationProvider | None = None
        self._engine: AsyncEngine | None = None
        self._read_engine: AsyncEngine | None = None
        self._claim: SqliteClaim | None = None
        self._sites: dict[SiteID, Site] = {}
        # One process on SQLite; on PostgreSQL any number, sharing the duties.
        self.duties: SoleDuties | ReplicaDuties = (
            SoleDuties()
            if is_sqlite(config.database)
            else ReplicaDuties(config.database, self.tasks, look_every=tuning.replica_look_seconds)
        )
        # A registry per bridge: several bridges in one process count apart.
        self.meter = PrometheusMeter()

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        for key in self.config.unknown_keys:
            logger.warning("The config sets %s, which this bridge does not know: ignored", key)
        await self._build_store()
        http = self._http = without_silent_retries(aiohttp.ClientSession())
        self._sites = sites_of(self.config)
        self.answering = AnsweringRoles(self.config.bridge.allowed_roles)
        self._build_matrix(http)
        announcer = self._build_announcer(http)
        self._build_translations()
        desk = self._build_core(announcer)
        self._build_transactions(announcer)
        widget_app, homeserver_app = self._build_web_apps(desk)
        if self.detector is not None:
            await self.detector.warm_up()
        self._want_duties()
        if self.duties.alone:
            # What a previous run left unapplied goes first, before the homeserver can send
            # anything newer. (With replicas, the holder applies from the store, in order.)
            await self.transactions.resume()
        await self._serve_all(widget_app, homeserver_app)
        # Taking a duty up picks up what its last holder (a previous run, a dead replica)
        # left; alone, this process takes every duty now.
        await self.duties.start()
        self.tasks.spawn(self._greet_homeserver(), name="greet-homeserver")
        logger.info(
            "Bazaar Bridge running: appservice on %s:%d, web API on %s",
            self.config.appservice.hostname,
            self.config.appservice.port,
            self.config.web.public_url,
        )

    async def _build_store(self) -> None:
        """The database, migrated to the current schema, and the repository over it."""
        if is_sqlite(self.config.database):
            self._claim = SqliteClaim(self.config.database)
            self._claim.take()
        self._engine = create_engine(self.config.database)
        self._read_engine = create_read_engine(self.config.database, self._engine)
        await migrate(self._engine)
        self.repository = SqlRepository(sessions(self._engine), sessions(self._read_engine))
        self.repository.party_changed = partial(self.duties.tell_others, PARTIES_TOPIC)
        self.duties.hear(PARTIES_TOPIC, self.repository.forget_party)

    def _build_matrix(self, http: aiohttp.ClientSession) -> None:
        """The homeserver side: the gateway, and the rooms port on top of it."""
        config = self.config
        self.names = MatrixNames(
            config.homeserver.domain,
            config.appservice.ghost_prefix,
            config.appservice.bot_username,
        )
        self.gateway = MatrixGateway(config.homeserver.address, config.appservice.as_token, http)
        # The context pane's OpenID tokens are checked with the same homeserver.
        self.openid = OpenIdCheck(config.homeserver.address, config.homeserver.domain, http)
        # Uploads and product images share its limit on images decoded at once.
        self.media = MediaLibrary(config.media)
        self.rooms = MatrixRooms(
            self.gateway,
            self.names,
            self.repository,
            self.repository,
            self.repository,
            ProductImages(self.media, config.media),
            config.appservice.id,
            {site_id: site.admins for site_id, site in self._sites.items()},
            bot_name=BOT_DISPLAY_NAME,
            room_version=config.bridge.room_version,
            shared_contacts=[
                site_id for site_id, site in self._sites.items() if site.share_buyer_contact
            ],
            pane_url=config.web.public_url,
        )

    def _build_announcer(self, http: aiohttp.ClientSession) -> Announcer:
        """What hears of each change: the marketplaces' webhooks and the buyers' feed."""
        targets = {
            SiteID(site.id): WebhookTarget(site.webhook_url, site.webhook_secret)
            for site in self.config.sites
            if site.webhook_url and site.webhook_secret
        }
        self.webhooks = WebhookDispatcher(
            self.repository,
            targets,
            http,
            self.tasks,
            self.duties,
            self.tuning.webhook_retry,
            self.meter,
        )
        self.feed = FeedHub(
            self.repository, self.tasks, self.config.web.max_streams_per_buyer, self.duties
        )
        return Announcer(self._sites, self.webhooks.wake, self.feed.notify, self._build_mail())

    def _build_mail(self) -> Mailing | None:
        """Mail out: its rules, the outbox's sender and the buyer's digest; with no `email`
        section, none of them and no mail at all."""
        self.mail_sender: MailSender | None = None
        self.digest: BuyerDigest | None = None
        email = self.config.email
        if email is None:
            return None
        composer = MailComposer(
            email.from_address,
            self.config.web.public_url,
            email.inbound.domain if email.inbound is not None else None,
        )
        self.mail_sender = MailSender(
            self.repository,
            email.smtp,
            self.tasks,
            self.tuning.mail_retry,
            self.tuning.mail_tls_context,
        )
        self.digest = BuyerDigest(
            self.repository,
            composer,
            self._sites,
            self.feed.has_stream,
            self._wake_mail,
            timedelta(minutes=email.buyer_delay_minutes),
            self.tuning.digest_every_seconds,
        )
        self.duties.hear(MAIL_DUTY, lambda _: self._wake_mail())
        return Mailing(composer, self._sites, self._wake_mail)

    def _wake_mail(self) -> None:
        """Mail was committed to the outbox: the sender, here or on the replica whose duty
        mail is, is woken."""
        if self.duties.holds(MAIL_DUTY):
            if self.mail_sender is not None:
                self.mail_sender.wake()
        else:
            self.duties.tell_holder(MAIL_DUTY)

    def _build_translations(self) -> None:
        """Language detection and the translation provider, behind its cache and pause."""
        config = self.config
        self.detector = (
            LinguaDetector(config.translation.detect_languages)
            if config.translation.provider != "none"
            else None
        )
        self._translator = make_provider(config.translation)
        self.translations = Translations(
            self._translator,
            self.repository,
            self.detector,
            pause_after_failure=self.tuning.translation_pause,
            meter=self.meter,
        )

    async def _after_delivery(self, conversation: Conversation) -> None:
        """What follows the buyer messages into a room: automatic replies' notices, then
        the orders' and offers' state and notices; one read when nothing is owed."""
        if conversation.room_id is None or not await self.repository.owes_room(
            conversation.conversation_id
        ):
            return
        await self.auto_replies.post_notices(conversation)
        await self.order_room.post(conversation)
        await self.offer_room.post(conversation)

    def _build_core(self, announcer: Announcer) -> BuyerDesk:
        """The domain's services: delivery, blocking, the archive, both desks."""
        config = self.config
        self.files = AttachmentFiles(self.repository, self.rooms, self.media)
        self.auto_replies = AutoReplies(self.repository, self.rooms, announcer, self.translations)
        self.courier = Courier(
            self.repository,
            self.rooms,
            self._sites,
            self.answering,
            self.tasks,
            announcer,
            self.translations,
            self.media,
            self.tuning.delivery_backoff,
            after_delivery=self._after_delivery,
            meter=self.meter,
            duties=self.duties,
        )
        self.blocking = Blocking(self.repository, self.rooms, self.courier, announcer)
        self.archive = Archive(
            self.repository, self.courier, announcer, config.bridge.archive_after_days
        )
        target_hours = config.bridge.response_target_hours
        self.response_times = ResponseTimes(
            self.repository, self.courier.refresh_members, target_hours
        )
        self.reminders = Reminders(
            self.repository, self.rooms, self.answering, self._sites, target_hours
        )
        self.contact_guard = ContactGuard(
            ContactScreen(
                {
                    SiteID(site.id): (Policy(site.contact_policy), site.phone_region)
                    for site in config.sites
                }
            ),
            self.repository,
            announcer,
            self.courier.wake,
        )
        self.conversations = MarketplaceDesk(
            self.repository,
            self.rooms,
            self.courier,
            self._sites,
            announcer,
            self.answering,
            self.blocking,
            self.archive,
            self.names.ghost_too_long,
            detector=self.detector,
            auto_replies=self.auto_replies,
            response_times=self.response_times,
            contact_guard=self.contact_guard,
        )
        matrix_orders = MatrixOrders(self.gateway, self.rooms)
        self.order_room = OrderRoom(self.repository, matrix_orders, self.courier.wake)
        self.orders = OrderDesk(self.repository, announcer, self.courier.wake)
        self.offer_room = OfferRoom(self.repository, matrix_orders, self.courier.wake)
        self.offers = OfferDesk(self.repository, announcer, self.courier.wake, self._sites)
        self.marks = SellerMarks(
            self.repository, announcer, self.answering, self.courier.refresh_members
        )
        # One limiter for each buyer's requests, whichever service takes them.
        limiter = RateLimiter(
            {
                **(self.tuning.buyer_rates or {}),
                "download": Rate.per_minute(config.web.downloads_per_minute),
            }
        )
        self.stats = ResponseStats(
            self.repository, self.rooms, paint_chart, config.bridge.response_target_hours
        )
        self.feedback = FeedbackDesk(
            self.repository,
            self.rooms,
            announcer,
            limiter,
            self.answering,
            self._sites,
            self.tasks,
            reply_speed=self.stats,
        )
        return BuyerDesk(
            self.repository,
            self.conversations,
            self.rooms,
            announcer,
            limiter,
            self.tasks,
            self.files,
            UploadSlots(config.web.max_uploads_per_buyer),
        )

    def _build_transactions(self, announcer: Announcer) -> None:
        """What the homeserver's transactions reach: the sellers' replies and commands, and
        the admins' broadcasts."""
        self.templates = TemplateDesk(self.repository, self.rooms, self.media)
        commands = SellerCommands(
            self.repository,
            self.rooms,
            self.blocking,
            room_commands=[
                *self.templates.room_commands,
                *DeskCommands(
                    self.marks, self.answering, self.repository, announcer, self.rooms
                ).commands(),
                self.response_times.command(),
                ProfileCommand(self.repository, self._sites).command(),
                self.offers.command(),
            ],
            management_commands=[
                *self.templates.management_commands,
                self.feedback.command(),
                self.stats.command(),
            ],
        )
        replies = SellerReplies(
            self.repository,
            self.rooms,
            self.answering,
            announcer,
            self.courier.refresh_members,
            self.archive,
            commands,
            self.translations,
            response_times=self.response_times,
            contact_guard=self.contact_guard,
            meter=self.meter,
        )
        self.templates.reply_through(replies)
        self.broadcasts = Broadcasts(self.repository, self.rooms, self._sites, self.answering)
        self.transactions = TransactionProcessor(
            self.repository,
            replies,
            self.rooms,
            self.names,
            self.repository,
            self.broadcasts,
            self.tasks,
            self.meter,
            is_outage=is_outage,
            backoff=self.tuning.delivery_backoff,
            duties=self.duties,
        )

    def _build_web_apps(self, desk: BuyerDesk) -> tuple[web.Application, web.Application]:
        """The web app (the widget's and the marketplaces' APIs) and the appservice app."""
        config = self.config
        secrets = {SiteID(site.id): site.widget_secret for site in config.sites}

        def issue_token(site: SiteID, buyer: Buyer, ttl: int) -> tuple[str, int]:
            return issue_buyer_token(secrets[site], buyer, ttl)

        web_app = web.Application(middlewares=[cors_middleware, errors_middleware])
        web_app[BODY_TIMEOUT] = config.web.body_timeout_seconds
        web_app[OUTAGES] = is_outage
        widget_routes(
            web_app,
            WidgetContext(
                desk,
                self.feed,
                {
                    SiteID(site.id): WidgetSite(site.widget_secret, frozenset(site.allowed_origins))
                    for site in config.sites
                },
                config.media.max_upload_bytes,
                self.feedback,
                BuyerCards(self.repository),
            ),
        )
        marketplace_routes(
            web_app,
            self.conversations,
            {SiteID(site.id): site.api_token for site in config.sites},
            issue_token,
            self.files,
        )
        template_routes(web_app, self.templates)
        label_routes(web_app, self.marks)
        order_routes(web_app, self.orders)
        offer_routes(web_app, self.offers)
        self.erasure = BuyerErasure(
            self.repository,
            MatrixErasure(self.gateway, self.rooms, self.names),
            self.media,
            self.tasks.spawn,
            self.tuning.delivery_backoff.delay,
            duties=self.duties,
        )
        erasure_routes(web_app, self.erasure, BuyerExport(self.repository, self.media))
        stats_routes(web_app, self.stats)
        self.pane_sessions = PaneSessions(session_key(config.appservice.as_token))
        pane_routes(
            web_app,
            PaneContext(
                PaneDesk(
                    self.repository,
                    membership_in(self.gateway),
                    self.rooms.display_name,
                    self.answering,
                    self._sites,
                    self.templates,
                ),
                self.pane_sessions,
                self.openid,
            ),
        )
        unsubscribe_routes(web_app, MailChoices(self.repository))
        mailed_file_routes(web_app, MailedFiles(self.repository, self.files))
        self._build_operations(web_app)
        homeserver_app = appservice_app(
            config.appservice.hs_token,
            self.transactions,
            self.names,
            self.conversations,
            self.rooms,
        )
        homeserver_app[BODY_TIMEOUT] = config.web.body_timeout_seconds
        homeserver_app[OUTAGES] = is_outage
        return web_app, homeserver_app

    def _build_operations(self, web_app: web.Application) -> None:
        """`/metrics` and the health checks on the web port."""
        assert self._read_engine is not None and self._http is not None
        reads = sessions(self._read_engine)
        self.meter.watch(
            partial(queue_depths, reads),
            lambda: self.feed.open_streams,
            duties_held=lambda: len(self.duties.held),
        )
        readiness = Readiness(
            partial(database_answers, reads), self.config.homeserver.address, self._http
        )
        operations_routes(web_app, self.meter, readiness)

    async def _serve_all(self, web_app: web.Application, homeserver_app: web.Application) -> None:
        config = self.config
        await self._serve(
            homeserver_app,
            config.appservice.hostname,
            config.appservice.port,
            # Synapse keeps idle connections to an appservice for 120 s; closing ours first
            # would race its next transaction on the same connection, and delay it.
            keepalive_timeout=HOMESERVER_KEEPALIVE_SECONDS,
        )
        await self._serve(web_app, config.web.hostname, config.web.port)
        inbound = config.email.inbound if config.email is not None else None
        if inbound is not None:
            replies = MailReplies(self.repository, self.conversations, self.files, inbound)
            self._inbound = InboundListener(replies, inbound)
            await self._inbound.start()

    def _want_duties(self) -> None:
        """The work done once, by whichever replica holds its duty (alone, all of it):
        the appservice's transactions and the catch-up, the deliveries, each site's
        webhooks (`WebhookDispatcher`), mail, the archive clock, reminders, erasures."""
        duties, tasks = self.duties, self.tasks
        transactions = self.transactions

        async def take_transactions(_: frozenset[str]) -> None:
            await transactions.resume()

        duties.want([APPSERVICE_DUTY], take_transactions, lambda _: transactions.let_go())
        self.catchup = Catchup(
            self.gateway,
            self.transactions,
            self.repository,
            look_every=self.tuning.homeserver_look_seconds,
        )
        while_held(duties, tasks, APPSERVICE_DUTY, self.catchup.run)
        duties.want(DELIVERY_DUTIES, self._take_deliveries, shared=True)
        if self.mail_sender is not None and self.digest is not None:
            while_held(duties, tasks, MAIL_DUTY, self.mail_sender.run)
            while_held(duties, tasks, MAIL_DUTY, self.digest.run)
        while_held(duties, tasks, ARCHIVE_DUTY, self.archive.run)
        while_held(duties, tasks, REMINDERS_DUTY, self.reminders.run)

        async def take_erasures(_: frozenset[str]) -> None:
            await self.erasure.resume()

        duties.want([ERASURE_DUTY], take_erasures)

        async def take_admin_rooms(_: frozenset[str]) -> None:
            pass  # made by the greeting, on the replica that holds this then

        duties.want([ADMIN_ROOMS_DUTY], take_admin_rooms)

    async def _take_deliveries(self, shards: frozenset[str]) -> None:
        """Rooms not made, messages not delivered, members not in line, orders and offers
        not shown: what the shards' last holder left."""
        await self.courier.resume(shards)
        await self.order_room.resume()
        await self.offer_room.resume()

    async def _greet_homeserver(self) -> None:
        """Ping the homeserver until it answers, then name the bot.

        The ping makes the homeserver resend at once the transactions it queued while the
        bridge was down (it would otherwise wait out its own backoff), and proves that the
        registration's URL and tokens work both ways. Naming the bot here is only early:
        `MatrixRooms` names it anyway before its first room or invite, ping or no ping.
        """
        attempt = 0
        while True:
            try:
                took = await self.gateway.ping(self.config.appservice.id)
                logger.info("The homeserver reaches the bridge (%d ms round trip)", took)
                await self.rooms.bot.introduce()
                await self.rooms.bot.check_room_version()
                if self.duties.holds(ADMIN_ROOMS_DUTY):
                    await self.rooms.spaces.ensure_admin_rooms(self._sites.values())
                return
            except (HomeserverUnavailable, MatrixRejected) as error:
                delay = self.tuning.delivery_backoff.delay(attempt)
                attempt += 1
                logger.warning("Homeserver ping failed (%s); again in %.0fs", error, delay)
                await asyncio.sleep(delay)

    async def _serve(
        self, app: web.Application, host: str, port: int, keepalive_timeout: float = 75.0
    ) -> None:
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=5,
            logger=protocol_logger,
            keepalive_timeout=keepalive_timeout,
        )
        await runner.setup()
        self._runners.append(runner)
        await web.TCPSite(runner, host, port).start()

    @property
    def served_apps(self) -> tuple[web.Application, ...]:
        """The applications serving now, the appservice's first (their routes, for tests
        and tools)."""
        return tuple(runner.app for runner in self._runners)

    async def stop(self) -> None:
        if self._inbound is not None:
            await self._inbound.stop()
            self._inbound = None
        # Listening stops first, and connections accepted at that moment get their handlers
        # before the runners close every connection they know of: aiohttp's shutdown
        # forgets, unclosed, one whose handler comes while it waits for the others.
        for runner in self._runners:
            for site in list(runner.sites):
                await site.stop()
        if self._runners:
            await asyncio.sleep(ACCEPT_SETTLE_SECONDS)
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        # Events in hand are applied before the store closes, if that is quick (a task cut
        # off inside a statement leaves its connection unclosed); the rest wait in the store
        # for the next start. None when the start failed before it was made.
        transactions: TransactionProcessor | None = getattr(self, "transactions", None)
        if transactions is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_GRACE_SECONDS):
                    await transactions.wait_idle()
        await self.tasks.close()
        # The duties go last: another replica takes them up at once.
        await self.duties.stop()
        if isinstance(self._translator, DeepTranslatorProvider):
            self._translator.close()
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._read_engine is not None and self._read_engine is not self._engine:
            await self._read_engine.dispose()
        self._read_engine = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
        if self._claim is not None:
            self._claim.release()
            self._claim = None
        logger.info("Bazaar Bridge stopped")
